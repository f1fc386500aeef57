-- 0002_reports: campaign reports (issue 19). Current statistics per campaign activity, their
-- dated history, per-contact tracking events, links, and where the reporting pass stands per
-- activity and report; views for the questions analysts ask first.
-- Keys: every table is keyed by (account, campaign_activity_id) and refers to the activity's
-- statistics row (written first, enforced). campaign_activity_id and campaign_id also name
-- campaign_activities and campaigns, and contact_id names contacts; those keys are documented
-- rather than enforced, since campaigns and contacts are mirrored on their own schedules (a
-- report can name a contact or an activity the mirror has not listed yet, or no longer lists:
-- a deleted contact keeps its history).
-- Append-only: never edit a migration once released; add a new numbered file instead.

-- The statistics of each sent activity as last read (GET /reports/stats/email_campaign_activities).
-- opens and clicks count each contact once; opens_all and clicks_all every open and click.
CREATE TABLE campaign_activity_stats (
    account              TEXT NOT NULL,
    campaign_activity_id TEXT NOT NULL,
    campaign_id          TEXT NOT NULL,
    sends                INTEGER NOT NULL DEFAULT 0,
    opens                INTEGER NOT NULL DEFAULT 0,
    opens_all            INTEGER NOT NULL DEFAULT 0,
    clicks               INTEGER NOT NULL DEFAULT 0,
    clicks_all           INTEGER NOT NULL DEFAULT 0,
    forwards             INTEGER NOT NULL DEFAULT 0,
    optouts              INTEGER NOT NULL DEFAULT 0,
    abuse                INTEGER NOT NULL DEFAULT 0,   -- spam reports
    bounces              INTEGER NOT NULL DEFAULT 0,
    not_opened           INTEGER NOT NULL DEFAULT 0,
    breakdown            TEXT NOT NULL DEFAULT '{}',   -- JSON: opens/clicks by device, bounces by reason
    last_sent_date       TEXT,        -- the campaign's last send (summaries), when known
    last_refresh_time    TEXT,        -- when the API last computed the statistics
    changed_at           TEXT NOT NULL, -- when the mirror last saw them change
    mirrored_at          TEXT NOT NULL,
    seen_run             INTEGER,     -- the run that last read them (mirror_runs.id)
    PRIMARY KEY (account, campaign_activity_id)
) STRICT;

CREATE INDEX campaign_activity_stats_by_campaign
    ON campaign_activity_stats (account, campaign_id);

-- One row per activity per run that saw its statistics change: how they grew after a send.
CREATE TABLE campaign_activity_stats_history (
    account              TEXT NOT NULL,
    campaign_activity_id TEXT NOT NULL,
    run_id               INTEGER NOT NULL,  -- mirror_runs.id
    taken_at             TEXT NOT NULL,
    sends                INTEGER NOT NULL,
    opens                INTEGER NOT NULL,
    opens_all            INTEGER NOT NULL,
    clicks               INTEGER NOT NULL,
    clicks_all           INTEGER NOT NULL,
    forwards             INTEGER NOT NULL,
    optouts              INTEGER NOT NULL,
    abuse                INTEGER NOT NULL,
    bounces              INTEGER NOT NULL,
    not_opened           INTEGER NOT NULL,
    breakdown            TEXT NOT NULL,
    PRIMARY KEY (account, campaign_activity_id, run_id),
    FOREIGN KEY (account, campaign_activity_id)
        REFERENCES campaign_activity_stats (account, campaign_activity_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Per-contact events (/reports/email_reports/{id}/tracking/*). An event is identified by what
-- the API shows of it: contact, kind, time (seconds), link for clicks, and `occurrence`, the
-- 1-based count of identical rows (a contact opening twice within one second); reading a
-- report again inserts nothing twice. url_id is '' for every kind but clicks.
CREATE TABLE tracking_events (
    account              TEXT NOT NULL,
    campaign_activity_id TEXT NOT NULL,
    contact_id           TEXT NOT NULL,
    kind                 TEXT NOT NULL
                         CHECK (kind IN ('send', 'open', 'click', 'bounce', 'optout', 'forward', 'didnotopen')),
    occurred_at          TEXT NOT NULL,
    url_id               TEXT NOT NULL DEFAULT '',
    occurrence           INTEGER NOT NULL DEFAULT 1,
    link_url             TEXT,        -- clicks
    device_type          TEXT,        -- opens and clicks: computer | mobile | tablet | other
    bounce_code          TEXT,        -- bounces: B | D | F | S | V | X | Z
    opt_out_reason       TEXT,        -- opt-outs, when given
    mirrored_at          TEXT NOT NULL,
    PRIMARY KEY (account, campaign_activity_id, kind, contact_id, occurred_at, url_id, occurrence),
    FOREIGN KEY (account, campaign_activity_id)
        REFERENCES campaign_activity_stats (account, campaign_activity_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Engagement per contact without scanning every activity.
CREATE INDEX tracking_events_by_contact ON tracking_events (account, contact_id, kind, occurred_at);

-- The links of each activity (/reports/email_reports/{id}/links?no_clicks=true).
CREATE TABLE campaign_activity_links (
    account              TEXT NOT NULL,
    campaign_activity_id TEXT NOT NULL,
    url_id               TEXT NOT NULL,   -- the link's URL when the API gives no id
    link_url             TEXT NOT NULL,
    unique_clicks        INTEGER NOT NULL DEFAULT 0,
    link_tag             TEXT,
    list_action          TEXT,
    list_id              TEXT,
    mirrored_at          TEXT NOT NULL,
    PRIMARY KEY (account, campaign_activity_id, url_id),
    FOREIGN KEY (account, campaign_activity_id)
        REFERENCES campaign_activity_stats (account, campaign_activity_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Where the reporting pass stands for each activity and tracking report, so that a pass cut
-- short by the quota share resumes where it stopped and an unchanged report is not read
-- again. stats_seen: the statistics count the report was last read in full against (e.g.
-- opens_all for opens); next_href: the page to continue from; newest_at: the newest event
-- stored by the last complete read (a later read can stop there); done: the last read ended.
CREATE TABLE report_progress (
    account              TEXT NOT NULL,
    campaign_activity_id TEXT NOT NULL,
    report               TEXT NOT NULL
                         CHECK (report IN ('sends', 'opens', 'clicks', 'bounces', 'optouts', 'forwards', 'didnotopens', 'links')),
    stats_seen           INTEGER,
    next_href            TEXT,
    newest_at            TEXT,
    done                 INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    rows_read            INTEGER NOT NULL DEFAULT 0,
    run_id               INTEGER,      -- the run that last wrote it
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (account, campaign_activity_id, report),
    FOREIGN KEY (account, campaign_activity_id)
        REFERENCES campaign_activity_stats (account, campaign_activity_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- mirror_runs takes the reporting pass's runs too (a CHECK cannot be altered in SQLite: the
-- table is rebuilt with the same columns).
CREATE TABLE mirror_runs_0002 (
    id            INTEGER PRIMARY KEY,
    account       TEXT NOT NULL,
    resource      TEXT NOT NULL CHECK (resource IN ('contacts', 'custom_fields', 'lists', 'campaigns', 'reports')),
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
INSERT INTO mirror_runs_0002 SELECT * FROM mirror_runs;
DROP TABLE mirror_runs;
ALTER TABLE mirror_runs_0002 RENAME TO mirror_runs;
CREATE INDEX mirror_runs_by_resource ON mirror_runs (account, resource, started_at);

-- Open rate and click-through rate per campaign (its activities together), in percent with
-- one decimal as the API gives them: open_rate = unique opens / delivered, click_through_rate
-- = unique clicks / delivered, click_to_open_rate = unique clicks / unique opens (the API's
-- `click` percent); NULL when nothing was delivered (or opened).
CREATE VIEW campaign_report_rates AS
    SELECT s.account, s.campaign_id, c.name,
           sum(s.sends) AS sends, sum(s.bounces) AS bounces,
           sum(s.sends) - sum(s.bounces) AS delivered,
           sum(s.opens) AS opens, sum(s.clicks) AS clicks,
           sum(s.optouts) AS optouts, sum(s.abuse) AS abuse,
           round(100.0 * sum(s.opens) / nullif(sum(s.sends) - sum(s.bounces), 0), 1) AS open_rate,
           round(100.0 * sum(s.clicks) / nullif(sum(s.sends) - sum(s.bounces), 0), 1)
               AS click_through_rate,
           round(100.0 * sum(s.clicks) / nullif(sum(s.opens), 0), 1) AS click_to_open_rate,
           max(s.last_sent_date) AS last_sent_date
    FROM campaign_activity_stats AS s
    LEFT JOIN campaigns AS c ON c.account = s.account AND c.campaign_id = s.campaign_id
    GROUP BY s.account, s.campaign_id, c.name;

-- Engagement per contact over the mirrored events: last open, last click, and opens and
-- clicks in the 90 days before now. Contacts without any mirrored event are not listed.
CREATE VIEW contact_engagement AS
    SELECT e.account, e.contact_id,
           max(CASE WHEN e.kind = 'open' THEN e.occurred_at END) AS last_open_at,
           max(CASE WHEN e.kind = 'click' THEN e.occurred_at END) AS last_click_at,
           sum(CASE WHEN e.kind = 'open'
                     AND julianday(e.occurred_at) >= julianday('now', '-90 days')
                    THEN 1 ELSE 0 END) AS opens_last_90_days,
           sum(CASE WHEN e.kind = 'click'
                     AND julianday(e.occurred_at) >= julianday('now', '-90 days')
                    THEN 1 ELSE 0 END) AS clicks_last_90_days,
           count(DISTINCT CASE WHEN e.kind IN ('open', 'click') THEN e.campaign_activity_id END)
               AS activities_engaged
    FROM tracking_events AS e
    GROUP BY e.account, e.contact_id;

-- Links ranked by unique clicks within their campaign (1 = most clicked; ties share a rank).
CREATE VIEW link_click_ranking AS
    SELECT l.account, s.campaign_id, l.campaign_activity_id, l.url_id, l.link_url,
           l.unique_clicks,
           rank() OVER (PARTITION BY l.account, s.campaign_id ORDER BY l.unique_clicks DESC)
               AS click_rank
    FROM campaign_activity_links AS l
    JOIN campaign_activity_stats AS s
      ON s.account = l.account AND s.campaign_activity_id = l.campaign_activity_id;
