// Calls the segment, tag, tagging, list, opt-out and bulk delete endpoints of a ctct-sandbox
// through Constant Contact's official TypeScript client (npm ctct-api-client, its CommonJS
// build), resolved from CTCT_NODE_MODULES.
// Input (environment): CTCT_BASE_URL, CTCT_TOKEN; CTCT_CONTACTS (two contact ids, comma
// separated, to tag); CTCT_OPT_OUT_CONTACT (a contact to unsubscribe); CTCT_LIST (a list to
// rename and delete); CTCT_MEMBERS_LIST (a list to add the two contacts to and remove the
// second from) when CTCT_MEMBERSHIPS is 1 (the sandbox implements the list membership
// activities); for the bulk deletes, CTCT_DELETE_CONTACT (a contact to delete by id),
// CTCT_DELETE_MEMBERS (a list whose members to delete), CTCT_DELETE_LISTS (lists to delete,
// comma separated) and CTCT_DELETE_FIELD (a custom field to delete; the tag to delete is made
// here, after the tags are listed), and CTCT_ADMIN_URL and CTCT_ADMIN_TOKEN (the sandbox's
// admin API, whose clock is frozen: each poll of a delete activity that has not finished moves
// it on one second).
// Output: one JSON object on stdout, what each call answered (no ids, which differ per run).
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
  const segmentsApi = new ctct.SegmentsApi(config);
  const tagsApi = new ctct.ContactTagsApi(config);
  const activitiesApi = new ctct.BulkActivitiesApi(config);
  const listsApi = new ctct.ContactListsApi(config);
  const contactsApi = new ctct.ContactsApi(config);
  const [first, second] = process.env.CTCT_CONTACTS.split(',');
  const optingOut = process.env.CTCT_OPT_OUT_CONTACT;
  const listId = process.env.CTCT_LIST;
  const out = {};

  // The answer's body, after checking its status.
  const data = (response, status) => {
    assert.strictEqual(response.status, status, JSON.stringify(response.data));
    return response.data;
  };
  // An activity as created and as GET /activities/{id} reads it.
  const activity = async (name, response, status) => {
    const created = data(response, status);
    const read = data(await activitiesApi.getActivityById(created.activity_id), 200);
    assert.strictEqual(read.activity_id, created.activity_id);
    out[name] = { created: created.state, read: read.state };
    if (created.status) out[name].items = created.status.items_total_count;
    if (read.status) out[name].read_items = read.status.items_total_count;
  };

  // Moves the sandbox's frozen clock on one second (its admin API, not the client's).
  const advanceClock = async () => {
    const response = await fetch(`${process.env.CTCT_ADMIN_URL}/clock`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${process.env.CTCT_ADMIN_TOKEN}`,
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ advance_secs: 1 }),
    });
    assert.strictEqual(response.status, 200, await response.text());
  };
  // A bulk delete activity as created, then polled through the client until it ends.
  const deleted = async (name, response) => {
    const created = data(response, 201);
    let read;
    for (let poll = 0; poll < 10; poll += 1) {
      read = data(await activitiesApi.getActivityById(created.activity_id), 200);
      if (['completed', 'failed', 'cancelled', 'timed_out'].includes(read.state)) break;
      await advanceClock();
    }
    out[name] = {
      created: created.state,
      created_status: created.status || null,
      ended: read.state,
      status: read.status || null,
    };
  };

  // Segments: two pages of two, then one with its criteria. getAllSegments takes no cursor:
  // the one from _links.next goes in as a query parameter of the request's options.
  let page = data(await segmentsApi.getAllSegments('2'), 200);
  out.segments_page_1 = page.segments.map((s) => s.name);
  const next = new URL(page._links.next.href, 'http://sandbox');
  assert.strictEqual(next.pathname, '/v3/segments');
  const cursor = next.searchParams.get('cursor');
  page = data(await segmentsApi.getAllSegments(undefined, undefined, { params: { cursor } }), 200);
  out.segments_page_2 = page.segments.map((s) => s.name);
  out.segments_page_2_next = Boolean(page._links && page._links.next);
  const segment = data(await segmentsApi.getSegmentById(page.segments[0].segment_id), 200);
  out.segment = { name: segment.name, criteria: JSON.parse(segment.segment_criteria) };

  // Tags: create two, list them with counts, rename and read one, tag and untag the contacts.
  const vip = data(await tagsApi.postTag({ name: 'VIP' }), 201);
  const spare = data(await tagsApi.postTag({ name: 'Spare' }), 201);
  const tags = data(await tagsApi.getAllTags(50, true), 200);
  out.tags = tags.tags.map((t) => [t.name, t.contacts_count]).sort();
  out.tag_renamed = data(await tagsApi.putTag(vip.tag_id, { name: 'VIP Gold' }), 200).name;
  const read = data(await tagsApi.getTag(vip.tag_id, true), 200);
  out.tag_read = [read.name, read.contacts_count];

  await activity(
    'taggings_add',
    await activitiesApi.createTagAddContactActivity({
      source: { contact_ids: [first, second] },
      tag_ids: [vip.tag_id],
    }),
    201,
  );
  await activity(
    'taggings_remove',
    await activitiesApi.createTagRemoveActivity({
      source: { contact_ids: [second] },
      tag_ids: [vip.tag_id],
    }),
    201,
  );
  await activity('tag_delete', await tagsApi.deleteTag(spare.tag_id), 202);

  // Lists: membership activities (when the sandbox has them), a rename, a delete.
  if (process.env.CTCT_MEMBERSHIPS === '1') {
    const members = process.env.CTCT_MEMBERS_LIST;
    await activity(
      'memberships_add',
      await activitiesApi.createListAddActivity({
        source: { contact_ids: [first, second] },
        list_ids: [members],
      }),
      201,
    );
    await activity(
      'memberships_remove',
      await activitiesApi.createListRemoveActivity({
        source: { contact_ids: [second] },
        list_ids: [members],
      }),
      201,
    );
  }

  const updated = data(
    await listsApi.updateList(listId, {
      name: 'Renamed',
      description: 'Spanish newsletter',
      favorite: true,
    }),
    200,
  );
  out.list_updated = [updated.name, updated.description, updated.favorite];
  await activity('list_delete', await listsApi.deleteList(listId), 202);

  // An opt-out as contact.opt_out records it: PUT with permission_to_send unsubscribed and a
  // reason.
  const contact = data(await contactsApi.getContactById(optingOut), 200);
  const unsubscribed = data(
    await contactsApi.updateContact(optingOut, {
      email_address: {
        address: contact.email_address.address,
        permission_to_send: 'unsubscribed',
        opt_out_reason: 'Too many e-mails',
      },
      first_name: contact.first_name,
      update_source: 'Account',
    }),
    200,
  );
  const email = unsubscribed.email_address;
  out.opt_out = [email.permission_to_send, email.opt_out_source, email.opt_out_reason];
  out.opt_out_dated = Boolean(email.opt_out_date);

  // Bulk deletes, each polled to its end.
  await deleted(
    'contact_delete',
    await activitiesApi.createDeleteActivity({ contact_ids: [process.env.CTCT_DELETE_CONTACT] }),
  );
  await deleted(
    'contact_delete_by_lists',
    await activitiesApi.createDeleteActivity({ list_ids: [process.env.CTCT_DELETE_MEMBERS] }),
  );
  await deleted(
    'lists_delete',
    await activitiesApi.createListDeleteActivity({
      list_ids: process.env.CTCT_DELETE_LISTS.split(','),
    }),
  );
  const old = data(await tagsApi.postTag({ name: 'Old' }), 201);
  await deleted('tags_delete', await activitiesApi.createTagDeleteActivity({ tag_ids: [old.tag_id] }));
  await deleted(
    'custom_fields_delete',
    await activitiesApi.postCustomFieldDelete({
      custom_field_ids: [process.env.CTCT_DELETE_FIELD],
    }),
  );

  const sorted = Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]]));
  console.log(JSON.stringify(sorted));
}

main().catch((error) => {
  console.error(error && error.response ? `${error.message}: ${JSON.stringify(error.response.data)}` : error);
  process.exit(1);
});
