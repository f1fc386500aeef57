-- 0005_tags_segments: contact tags (their definitions and which contacts carry them) and
-- segments (their definitions); the same tables as migrations/sqlite/mirror/0005, typed the
-- PostgreSQL way. Tags and segments are listed in full on every run of their resource; a tag
-- or segment the listing no longer shows (deleted in Constant Contact) is removed with its
-- next run, a tag with its taggings. Taggings come with the contacts pass.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE TABLE contact_tags (
    account        text NOT NULL,
    tag_id         text NOT NULL,
    name           text NOT NULL,
    tag_source     text,
    contacts_count bigint,
    created_at     timestamptz,
    updated_at     timestamptz,
    mirrored_at    timestamptz NOT NULL,
    seen_run       bigint,
    PRIMARY KEY (account, tag_id)
);

-- tag_id refers to contact_tags (account, tag_id), documented rather than enforced (a
-- contact can carry a tag created after the last tags listing).
CREATE TABLE contact_taggings (
    account    text NOT NULL,
    contact_id text NOT NULL,
    tag_id     text NOT NULL,
    PRIMARY KEY (account, contact_id, tag_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
);

CREATE INDEX contact_taggings_by_tag ON contact_taggings (account, tag_id);

CREATE TABLE segments (
    account            text NOT NULL,
    segment_id         bigint NOT NULL,
    name               text NOT NULL,
    segment_criteria   jsonb,   -- the segment's rules (the API gives them as JSON text)
    created_at         timestamptz,
    edited_at          timestamptz,
    criteria_edited_at timestamptz, -- the edited_at the criteria were read at
    mirrored_at        timestamptz NOT NULL,
    seen_run           bigint,
    PRIMARY KEY (account, segment_id)
);

-- JSON [tag_id, …]; NULL when the source did not say (the contact's taggings are kept).
ALTER TABLE contacts_load ADD COLUMN tag_ids text;

CREATE VIEW tag_sizes AS
    SELECT t.account, t.tag_id, t.name,
           (SELECT count(*)
            FROM contact_taggings AS g
            JOIN contacts AS c ON c.account = g.account AND c.contact_id = g.contact_id
            WHERE g.account = t.account AND g.tag_id = t.tag_id AND c.deleted_at IS NULL)
               AS live_contacts
    FROM contact_tags AS t;

ALTER TABLE mirror_runs DROP CONSTRAINT mirror_runs_resource_check;
ALTER TABLE mirror_runs ADD CONSTRAINT mirror_runs_resource_check
    CHECK (resource IN ('contacts', 'custom_fields', 'lists', 'tags', 'segments', 'campaigns',
                        'reports'));
