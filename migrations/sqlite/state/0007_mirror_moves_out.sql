-- 0007_mirror_moves_out: the mirror's tables leave the state store for the mirror store
-- (mirror.url). Before this runs, the daemon copies their rows into the mirror store
-- (src/store/upgrade.rs); the state store keeps tokens, budget, ledger and bulk batches only.
-- Append-only: never edit a migration once released; add a new numbered file instead.

DROP VIEW live_contacts;
DROP TABLE contact_custom_field_values;
DROP TABLE contact_list_memberships;
DROP TABLE contacts;
DROP TABLE custom_fields;
DROP TABLE contact_lists;
DROP TABLE campaign_activities;
DROP TABLE campaigns;
DROP TABLE mirror_cursors;
DROP TABLE mirror_runs;
