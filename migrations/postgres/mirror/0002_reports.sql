-- 0002_reports: campaign reports (issue 19). The same tables, views and keys as
-- migrations/sqlite/mirror/0002_reports.sql, typed the PostgreSQL way (timestamptz, bigint,
-- boolean, jsonb). Current statistics per campaign activity, their dated history,
-- per-contact tracking events, links, and where the reporting pass stands per activity and
-- report; views for the questions analysts ask first.
-- Keys: every table is keyed by (account, campaign_activity_id) and refers to the activity's
-- statistics row (written first, enforced). campaign_activity_id and campaign_id also name
-- campaign_activities and campaigns, and contact_id names contacts; those keys are documented
-- rather than enforced, since campaigns and contacts are mirrored on their own schedules.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE TABLE campaign_activity_stats (
    account              text NOT NULL,
    campaign_activity_id text NOT NULL,
    campaign_id          text NOT NULL,
    sends                bigint NOT NULL DEFAULT 0,
    opens                bigint NOT NULL DEFAULT 0,
    opens_all            bigint NOT NULL DEFAULT 0,
    clicks               bigint NOT NULL DEFAULT 0,
    clicks_all           bigint NOT NULL DEFAULT 0,
    forwards             bigint NOT NULL DEFAULT 0,
    optouts              bigint NOT NULL DEFAULT 0,
    abuse                bigint NOT NULL DEFAULT 0,    -- spam reports
    bounces              bigint NOT NULL DEFAULT 0,
    not_opened           bigint NOT NULL DEFAULT 0,
    breakdown            jsonb NOT NULL DEFAULT '{}',  -- opens/clicks by device, bounces by reason
    last_sent_date       timestamptz,
    last_refresh_time    timestamptz,
    changed_at           timestamptz NOT NULL,
    mirrored_at          timestamptz NOT NULL,
    seen_run             bigint,
    PRIMARY KEY (account, campaign_activity_id)
);

CREATE INDEX campaign_activity_stats_by_campaign
    ON campaign_activity_stats (account, campaign_id);

CREATE TABLE campaign_activity_stats_history (
    account              text NOT NULL,
    campaign_activity_id text NOT NULL,
    run_id               bigint NOT NULL,
    taken_at             timestamptz NOT NULL,
    sends                bigint NOT NULL,
    opens                bigint NOT NULL,
    opens_all            bigint NOT NULL,
    clicks               bigint NOT NULL,
    clicks_all           bigint NOT NULL,
    forwards             bigint NOT NULL,
    optouts              bigint NOT NULL,
    abuse                bigint NOT NULL,
    bounces              bigint NOT NULL,
    not_opened           bigint NOT NULL,
    breakdown            jsonb NOT NULL,
    PRIMARY KEY (account, campaign_activity_id, run_id),
    FOREIGN KEY (account, campaign_activity_id)
        REFERENCES campaign_activity_stats (account, campaign_activity_id) ON DELETE CASCADE
);

CREATE TABLE tracking_events (
    account              text NOT NULL,
    campaign_activity_id text NOT NULL,
    contact_id           text NOT NULL,
    kind                 text NOT NULL
                         CHECK (kind IN ('send', 'open', 'click', 'bounce', 'optout', 'forward', 'didnotopen')),
    occurred_at          timestamptz NOT NULL,
    url_id               text NOT NULL DEFAULT '',
    occurrence           bigint NOT NULL DEFAULT 1,
    link_url             text,
    device_type          text,
    bounce_code          text,
    opt_out_reason       text,
    mirrored_at          timestamptz NOT NULL,
    PRIMARY KEY (account, campaign_activity_id, kind, contact_id, occurred_at, url_id, occurrence),
    FOREIGN KEY (account, campaign_activity_id)
        REFERENCES campaign_activity_stats (account, campaign_activity_id) ON DELETE CASCADE
);

CREATE INDEX tracking_events_by_contact ON tracking_events (account, contact_id, kind, occurred_at);

CREATE TABLE campaign_activity_links (
    account              text NOT NULL,
    campaign_activity_id text NOT NULL,
    url_id               text NOT NULL,
    link_url             text NOT NULL,
    unique_clicks        bigint NOT NULL DEFAULT 0,
    link_tag             text,
    list_action          text,
    list_id              text,
    mirrored_at          timestamptz NOT NULL,
    PRIMARY KEY (account, campaign_activity_id, url_id),
    FOREIGN KEY (account, campaign_activity_id)
        REFERENCES campaign_activity_stats (account, campaign_activity_id) ON DELETE CASCADE
);

CREATE TABLE report_progress (
    account              text NOT NULL,
    campaign_activity_id text NOT NULL,
    report               text NOT NULL
                         CHECK (report IN ('sends', 'opens', 'clicks', 'bounces', 'optouts', 'forwards', 'didnotopens', 'links')),
    stats_seen           bigint,
    next_href            text,
    newest_at            timestamptz,
    done                 boolean NOT NULL DEFAULT false,
    rows_read            bigint NOT NULL DEFAULT 0,
    run_id               bigint,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (account, campaign_activity_id, report),
    FOREIGN KEY (account, campaign_activity_id)
        REFERENCES campaign_activity_stats (account, campaign_activity_id) ON DELETE CASCADE
);

ALTER TABLE mirror_runs DROP CONSTRAINT mirror_runs_resource_check;
ALTER TABLE mirror_runs ADD CONSTRAINT mirror_runs_resource_check
    CHECK (resource IN ('contacts', 'custom_fields', 'lists', 'campaigns', 'reports'));

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

CREATE VIEW contact_engagement AS
    SELECT e.account, e.contact_id,
           max(e.occurred_at) FILTER (WHERE e.kind = 'open') AS last_open_at,
           max(e.occurred_at) FILTER (WHERE e.kind = 'click') AS last_click_at,
           count(*) FILTER (WHERE e.kind = 'open' AND e.occurred_at >= now() - interval '90 days')
               AS opens_last_90_days,
           count(*) FILTER (WHERE e.kind = 'click' AND e.occurred_at >= now() - interval '90 days')
               AS clicks_last_90_days,
           count(DISTINCT e.campaign_activity_id) FILTER (WHERE e.kind IN ('open', 'click'))
               AS activities_engaged
    FROM tracking_events AS e
    GROUP BY e.account, e.contact_id;

CREATE VIEW link_click_ranking AS
    SELECT l.account, s.campaign_id, l.campaign_activity_id, l.url_id, l.link_url,
           l.unique_clicks,
           rank() OVER (PARTITION BY l.account, s.campaign_id ORDER BY l.unique_clicks DESC)
               AS click_rank
    FROM campaign_activity_links AS l
    JOIN campaign_activity_stats AS s
      ON s.account = l.account AND s.campaign_activity_id = l.campaign_activity_id;
