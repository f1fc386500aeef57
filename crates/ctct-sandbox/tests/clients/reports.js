// Reads every email reporting endpoint of a ctct-sandbox through Constant Contact's official
// TypeScript client (npm ctct-api-client, its CommonJS build), resolved from CTCT_NODE_MODULES.
// Input (environment): CTCT_BASE_URL, CTCT_TOKEN, CTCT_CAMPAIGN, CTCT_ACTIVITY.
// Output: one JSON object on stdout, the number of items each call returned.
'use strict';
const path = require('path');
const assert = require('assert');

const modules = process.env.CTCT_NODE_MODULES || 'node_modules';
const ctct = require(path.resolve(modules, 'ctct-api-client'));

async function main() {
  const config = new ctct.Configuration({
    basePath: process.env.CTCT_BASE_URL,
    accessToken: process.env.CTCT_TOKEN,
  });
  const api = new ctct.EmailReportingApi(config);
  const campaign = process.env.CTCT_CAMPAIGN;
  const activity = process.env.CTCT_ACTIVITY;
  const counts = {};
  const tracking = (name, response) => {
    assert.strictEqual(response.status, 200);
    const rows = response.data.tracking_activities;
    for (const row of rows) assert.strictEqual(row.campaign_activity_id, activity);
    counts[name] = rows.length;
    counts[`${name}_next`] = Boolean(response.data._links && response.data._links.next);
  };
  tracking('sends', await api.getEmailSendsReport(activity, '500'));
  tracking('sends_page', await api.getEmailSendsReport(activity, '1'));
  tracking('opens', await api.getEmailOpensReport(activity, '500'));
  tracking('unique_opens', await api.getUniqueOpensReport(activity, '500'));
  tracking('didnotopens', await api.getDidNotOpensReport(activity, '500'));
  tracking('clicks', await api.getClicksReport(activity, undefined, '500'));
  tracking('forwards', await api.getForwardsReport(activity, '500'));
  tracking('optouts', await api.getOptoutsReport(activity, '500'));
  tracking('bounces', await api.getBouncesReport(activity, ['B', 'D', 'F', 'S', 'V', 'X', 'Z'], '500'));

  const links = (await api.getCampaignActivityLinkReport(activity, true)).data.link_click_counts;
  counts.links = links.length;
  counts.link_clicks = links.reduce((sum, link) => sum + link.unique_clicks, 0);
  const first = await api.getClicksReport(activity, Number(links[0].url_id), '500');
  counts.clicks_on_first_link = first.data.tracking_activities.length;

  const stats = (await api.getEmailCampaignActivityReport(activity)).data.results[0].stats;
  counts.activity_em_sends = stats.em_sends;
  counts.activity_em_opens = stats.em_opens;
  const campaignStats = (await api.getEmailStatsReport(campaign)).data.results[0].stats;
  counts.campaign_em_clicks = campaignStats.em_clicks;
  const summaries = (await api.getEmailCampaignReport('50')).data.bulk_email_campaign_summaries;
  counts.summaries = summaries.length;
  counts.summary_sends = summaries[0].unique_counts.sends;

  const sorted = Object.fromEntries(Object.keys(counts).sort().map((k) => [k, counts[k]]));
  console.log(JSON.stringify(sorted));
}

main().catch((error) => {
  console.error(error && error.response ? `${error.message}: ${JSON.stringify(error.response.data)}` : error);
  process.exit(1);
});
