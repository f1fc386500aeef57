"""Calls the segment, tag, tagging, list, opt-out and bulk delete endpoints of a ctct-sandbox
through Constant Contact's official Python client (PyPI constant-contact-api-client), which
parses each answer into its models.
Input (environment): CTCT_BASE_URL, CTCT_TOKEN; CTCT_CONTACTS (two contact ids, comma
separated, to tag); CTCT_OPT_OUT_CONTACT (a contact to unsubscribe); CTCT_LIST (a list to rename
and delete); CTCT_MEMBERS_LIST (a list to add the two contacts to and remove the second from)
when CTCT_MEMBERSHIPS is 1 (the sandbox implements the list membership activities);
for the bulk deletes, CTCT_DELETE_CONTACT (a contact to delete by id), CTCT_DELETE_MEMBERS (a
list whose members to delete), CTCT_DELETE_LISTS (lists to delete, comma separated) and
CTCT_DELETE_FIELD (a custom field to delete; the tag to delete is made here, after the tags are
listed), and CTCT_ADMIN_URL and CTCT_ADMIN_TOKEN (the sandbox's admin API, whose clock is
frozen: each poll of a delete activity that has not finished moves it on one second).
Output: one JSON object on stdout, what each call answered (no ids, which differ per run)."""

import json
import os
import urllib.parse
import urllib.request

import constant_contact_api_client as ctct

config = ctct.Configuration(host=os.environ["CTCT_BASE_URL"], access_token=os.environ["CTCT_TOKEN"])
client = ctct.ApiClient(config)
segments_api = ctct.SegmentsApi(client)
tags_api = ctct.ContactTagsApi(client)
activities_api = ctct.BulkActivitiesApi(client)
lists_api = ctct.ContactListsApi(client)
contacts_api = ctct.ContactsApi(client)
first, second = os.environ["CTCT_CONTACTS"].split(",")
opting_out = os.environ["CTCT_OPT_OUT_CONTACT"]
list_id = os.environ["CTCT_LIST"]

out = {}


def follow(href, model):
    """GET a `_links.next.href` (`/v3/...?cursor=...`), parsed into `model`: the generated
    methods take no cursor, so the request is built by the client's own ApiClient."""
    path, _, query = href.partition("?")
    assert path.startswith("/v3/"), href
    method, url, headers, body, post = client.param_serialize(
        method="GET",
        resource_path=path[len("/v3"):],
        query_params=urllib.parse.parse_qsl(query),
        header_params={"Accept": "application/json"},
        auth_settings=["oauth2_access_code"],
    )
    response = client.call_api(method, url, headers, body, post)
    response.read()
    return client.response_deserialize(response, {"200": model}).data


def activity(name, created, kind):
    """An activity as created and as GET /activities/{id} reads it."""
    assert isinstance(created, kind), type(created)
    read = activities_api.get_activity_by_id(created.activity_id)
    assert isinstance(read, ctct.GetActivityById200Response), type(read)
    assert read.activity_id == created.activity_id, (read, created)
    out[name] = {"created": created.state, "read": read.state}
    if getattr(created, "status", None) is not None:
        out[name]["items"] = created.status.items_total_count
    if read.status is not None:
        out[name]["read_items"] = read.status.items_total_count


def advance_clock():
    """Moves the sandbox's frozen clock on one second (its admin API, not the client's)."""
    request = urllib.request.Request(
        os.environ["CTCT_ADMIN_URL"] + "/clock",
        data=json.dumps({"advance_secs": 1}).encode(),
        headers={
            "Authorization": "Bearer " + os.environ["CTCT_ADMIN_TOKEN"],
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.status


def status_of(activity):
    """An activity's status as the client's model holds it (None when the model has none);
    the model's to_dict() would leave out the counts, which the spec marks readOnly."""
    status = getattr(activity, "status", None)
    return None if status is None else status.model_dump(by_alias=True, exclude_none=True)


def deleted(name, created, kind):
    """A bulk delete activity as created, then polled through the client until it ends."""
    assert isinstance(created, kind), type(created)
    for _ in range(10):
        read = activities_api.get_activity_by_id(created.activity_id)
        assert isinstance(read, ctct.GetActivityById200Response), type(read)
        if read.state in ("completed", "failed", "cancelled", "timed_out"):
            break
        advance_clock()
    out[name] = {
        "created": created.state,
        "created_status": status_of(created),
        "ended": read.state,
        "status": status_of(read),
    }


# Segments: two pages of two, then one with its criteria.
page = segments_api.get_all_segments(limit="2")
assert isinstance(page, ctct.GetAllSegments200Response), type(page)
out["segments_page_1"] = [s.name for s in page.segments]
page = follow(page.links.next.href, "GetAllSegments200Response")
out["segments_page_2"] = [s.name for s in page.segments]
out["segments_page_2_next"] = page.links is not None and page.links.next is not None
segment = segments_api.get_segment_by_id(page.segments[0].segment_id)
assert isinstance(segment, ctct.CreateSegment201Response), type(segment)
out["segment"] = {"name": segment.name, "criteria": json.loads(segment.segment_criteria)}

# Tags: create two, list them with counts, rename and read one, tag and untag the contacts.
vip = tags_api.post_tag(ctct.PostTagRequest(name="VIP"))
spare = tags_api.post_tag(ctct.PostTagRequest(name="Spare"))
tags = tags_api.get_all_tags(limit=50, include_count=True)
assert isinstance(tags, ctct.GetAllTags200Response), type(tags)
out["tags"] = sorted([t.name, t.contacts_count] for t in tags.tags)
renamed = tags_api.put_tag(vip.tag_id, ctct.PutTagRequest(name="VIP Gold"))
out["tag_renamed"] = renamed.name
read = tags_api.get_tag(vip.tag_id, include_count=True)
assert isinstance(read, ctct.GetTag200Response), type(read)
out["tag_read"] = [read.name, read.contacts_count]

source = ctct.CreateTagRemoveActivityRequestSource(contact_ids=[first, second])
activity(
    "taggings_add",
    activities_api.create_tag_add_contact_activity(
        ctct.CreateTagRemoveActivityRequest(source=source, tag_ids=[vip.tag_id])
    ),
    ctct.CreateTagRemoveActivity201Response,
)
source = ctct.CreateTagRemoveActivityRequestSource(contact_ids=[second])
activity(
    "taggings_remove",
    activities_api.create_tag_remove_activity(
        ctct.CreateTagRemoveActivityRequest(source=source, tag_ids=[vip.tag_id])
    ),
    ctct.CreateTagRemoveActivity201Response,
)
activity("tag_delete", tags_api.delete_tag(spare.tag_id), ctct.DeleteTag202Response)

# Lists: membership activities (when the sandbox has them), a rename, a delete.
if os.environ.get("CTCT_MEMBERSHIPS") == "1":
    members = os.environ["CTCT_MEMBERS_LIST"]
    source = ctct.CreateListAddActivityRequestSource(contact_ids=[first, second])
    activity(
        "memberships_add",
        activities_api.create_list_add_activity(
            ctct.CreateListAddActivityRequest(source=source, list_ids=[members])
        ),
        ctct.CreateListRemoveActivity201Response,
    )
    # The spec (and so the client's models) gives the request's list_ids and its source's
    # contact_ids `maxItems: 0`, which refuses every list and contact: the request is built
    # without the models' validation. Like the add's, its source says all_active_contacts false.
    source = ctct.CreateListRemoveActivityRequestSource.model_construct(contact_ids=[second])
    request = ctct.CreateListRemoveActivityRequest.model_construct(source=source, list_ids=[members])
    activity(
        "memberships_remove",
        activities_api.create_list_remove_activity(request),
        ctct.CreateListRemoveActivity201Response,
    )

updated = lists_api.update_list(
    list_id, ctct.UpdateListRequest(name="Renamed", description="Spanish newsletter", favorite=True)
)
assert isinstance(updated, ctct.UpdateList200Response), type(updated)
out["list_updated"] = [updated.name, updated.description, updated.favorite]
activity("list_delete", lists_api.delete_list(list_id), ctct.DeleteList202Response)

# An opt-out as contact.opt_out records it: PUT with permission_to_send unsubscribed and a reason.
contact = contacts_api.get_contact_by_id(opting_out)
address = ctct.UpdateContactRequestEmailAddress(
    address=contact.email_address.address,
    permission_to_send="unsubscribed",
    opt_out_reason="Too many e-mails",
)
put = ctct.UpdateContactRequest(
    email_address=address, first_name=contact.first_name, update_source="Account"
)
unsubscribed = contacts_api.update_contact(opting_out, put)
assert isinstance(unsubscribed, ctct.GetContactById200Response), type(unsubscribed)
email = unsubscribed.email_address
out["opt_out"] = [email.permission_to_send, email.opt_out_source, email.opt_out_reason]
out["opt_out_dated"] = email.opt_out_date is not None

# Bulk deletes, each polled to its end. The spec (and so the client's model) gives
# custom_field_ids `maxItems: 0`, which refuses every field: that request is built without the
# model's validation.
deleted(
    "contact_delete",
    activities_api.create_delete_activity(
        ctct.CreateDeleteActivityRequest(contact_ids=[os.environ["CTCT_DELETE_CONTACT"]])
    ),
    ctct.CreateDeleteActivity201Response,
)
deleted(
    "contact_delete_by_lists",
    activities_api.create_delete_activity(
        ctct.CreateDeleteActivityRequest(list_ids=[os.environ["CTCT_DELETE_MEMBERS"]])
    ),
    ctct.CreateDeleteActivity201Response,
)
deleted(
    "lists_delete",
    activities_api.create_list_delete_activity(
        ctct.CreateListDeleteActivityRequest(list_ids=os.environ["CTCT_DELETE_LISTS"].split(","))
    ),
    ctct.CreateListDeleteActivity201Response,
)
old = tags_api.post_tag(ctct.PostTagRequest(name="Old"))
deleted(
    "tags_delete",
    activities_api.create_tag_delete_activity(
        ctct.CreateTagDeleteActivityRequest(tag_ids=[old.tag_id])
    ),
    ctct.CreateTagRemoveActivity201Response,
)
request = ctct.PostCustomFieldDeleteRequest.model_construct(
    custom_field_ids=[os.environ["CTCT_DELETE_FIELD"]]
)
deleted(
    "custom_fields_delete",
    activities_api.post_custom_field_delete(request),
    ctct.PostCustomFieldDelete201Response,
)

print(json.dumps(out, sort_keys=True))
