-- 0005_tags_segments: contact tags (their definitions and which contacts carry them) and
-- segments (their definitions). Tags and segments are listed in full on every run of their
-- resource; a tag or segment the listing no longer shows (deleted in Constant Contact: the API
-- lists neither deleted tags nor deleted segments) is removed with its next run, a tag with
-- its taggings. Taggings come with the contacts pass (`include=taggings`, the export's
-- `taggings` column): a contact's rows follow its current tags.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE TABLE contact_tags (
    account        TEXT NOT NULL,
    tag_id         TEXT NOT NULL,
    name           TEXT NOT NULL,
    tag_source     TEXT,        -- what the tag came from, as its creator set it
    contacts_count INTEGER,     -- contacts the API counts with the tag (include_count=true)
    created_at     TEXT,
    updated_at     TEXT,
    mirrored_at    TEXT NOT NULL,
    seen_run       INTEGER,     -- the listing that last saw the tag (mirror_runs.id)
    PRIMARY KEY (account, tag_id)
) STRICT;

-- tag_id refers to contact_tags (account, tag_id), documented rather than enforced for the
-- same reason as list_id in contact_list_memberships: a contact can carry a tag created after
-- the last tags listing.
CREATE TABLE contact_taggings (
    account    TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    tag_id     TEXT NOT NULL,
    PRIMARY KEY (account, contact_id, tag_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX contact_taggings_by_tag ON contact_taggings (account, tag_id);

CREATE TABLE segments (
    account            TEXT NOT NULL,
    segment_id         INTEGER NOT NULL,
    name               TEXT NOT NULL,
    segment_criteria   TEXT,    -- the segment's rules: the JSON text the API gives
    created_at         TEXT,
    edited_at          TEXT,
    -- The edited_at the criteria were read at: criteria are read (one request per segment)
    -- only when the listing shows a segment edited since.
    criteria_edited_at TEXT,
    mirrored_at        TEXT NOT NULL,
    seen_run           INTEGER,
    PRIMARY KEY (account, segment_id)
) STRICT;

-- A contact's tags as the mirror's full contacts pass holds them before its end (JSON
-- [tag_id, …]; NULL when the source did not say, then the contact's taggings are left as
-- they are).
ALTER TABLE contacts_load ADD COLUMN tag_ids TEXT;

-- Every tag, with how many live contacts the mirror holds with it.
CREATE VIEW tag_sizes AS
    SELECT t.account, t.tag_id, t.name,
           (SELECT count(*)
            FROM contact_taggings AS g
            JOIN contacts AS c ON c.account = g.account AND c.contact_id = g.contact_id
            WHERE g.account = t.account AND g.tag_id = t.tag_id AND c.deleted_at IS NULL)
               AS live_contacts
    FROM contact_tags AS t;

-- mirror_runs takes the tags' and segments' runs too (the table rebuilt, as in 0002).
CREATE TABLE mirror_runs_0005 (
    id            INTEGER PRIMARY KEY,
    account       TEXT NOT NULL,
    resource      TEXT NOT NULL CHECK (resource IN ('contacts', 'custom_fields', 'lists', 'tags', 'segments', 'campaigns', 'reports')),
    mode          TEXT NOT NULL CHECK (mode IN ('full', 'incremental')),
    trigger       TEXT NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'command', 'cli')),
    path          TEXT CHECK (path IN ('export', 'paging')),
    resumed_from  INTEGER,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    pages         INTEGER NOT NULL DEFAULT 0,
    rows_upserted INTEGER NOT NULL DEFAULT 0,
    rows_deleted  INTEGER NOT NULL DEFAULT 0,
    api_requests  INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT NOT NULL DEFAULT 'running'
                  CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted', 'skipped')),
    error         TEXT,
    resets_at     TEXT
) STRICT;
INSERT INTO mirror_runs_0005 SELECT * FROM mirror_runs;
DROP TABLE mirror_runs;
ALTER TABLE mirror_runs_0005 RENAME TO mirror_runs;
CREATE INDEX mirror_runs_by_resource ON mirror_runs (account, resource, started_at);
