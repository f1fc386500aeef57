"""Reads every email reporting endpoint of a ctct-sandbox through Constant Contact's official
Python client (PyPI constant-contact-api-client), which parses each answer into its models.
Input (environment): CTCT_BASE_URL, CTCT_TOKEN, CTCT_CAMPAIGN, CTCT_ACTIVITY.
Output: one JSON object on stdout, the number of items each call returned."""

import json
import os

import constant_contact_api_client as ctct

config = ctct.Configuration(host=os.environ["CTCT_BASE_URL"], access_token=os.environ["CTCT_TOKEN"])
api = ctct.EmailReportingApi(ctct.ApiClient(config))
campaign = os.environ["CTCT_CAMPAIGN"]
activity = os.environ["CTCT_ACTIVITY"]

counts = {}


def tracking(name, page):
    rows = page.tracking_activities
    for row in rows:
        assert str(row.campaign_activity_id) == activity, row
    counts[name] = len(rows)
    counts[name + "_next"] = page.links is not None and page.links.next is not None


tracking("sends", api.get_email_sends_report(activity, limit="500"))
tracking("sends_page", api.get_email_sends_report(activity, limit="1"))
tracking("opens", api.get_email_opens_report(activity, limit="500"))
tracking("unique_opens", api.get_unique_opens_report(activity, limit="500"))
tracking("didnotopens", api.get_did_not_opens_report(activity, limit="500"))
tracking("clicks", api.get_clicks_report(activity, limit="500"))
tracking("forwards", api.get_forwards_report(activity, limit="500"))
tracking("optouts", api.get_optouts_report(activity, limit="500"))
tracking("bounces", api.get_bounces_report(activity, bounce_code=["B", "D", "F", "S", "V", "X", "Z"], limit="500"))

links = api.get_campaign_activity_link_report(activity, no_clicks=True)
counts["links"] = len(links.link_click_counts)
counts["link_clicks"] = sum(link.unique_clicks for link in links.link_click_counts)
clicks_on_first = api.get_clicks_report(activity, url_id=int(links.link_click_counts[0].url_id), limit="500")
counts["clicks_on_first_link"] = len(clicks_on_first.tracking_activities)

stats = api.get_email_campaign_activity_report(activity)
counts["activity_em_sends"] = stats.results[0].stats.em_sends
counts["activity_em_opens"] = stats.results[0].stats.em_opens
campaign_stats = api.get_email_stats_report(campaign)
counts["campaign_em_clicks"] = campaign_stats.results[0].stats.em_clicks
summaries = api.get_email_campaign_report(limit="50")
counts["summaries"] = len(summaries.bulk_email_campaign_summaries)
counts["summary_sends"] = summaries.bulk_email_campaign_summaries[0].unique_counts.sends

print(json.dumps(counts, sort_keys=True))
