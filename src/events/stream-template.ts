/**
 * The body template to paste into OneSignal's Event Stream (Data › Event Streams), shown by the
 * web UI and docs/onesignal-event-stream.md (a test keeps the two equal). Strings are quoted and
 * `user.tags` is not, so the tags arrive as an object; `message.title` is left out because push
 * renders it as an object and email as a string, and Liquid does not escape quotes.
 */
export const EVENT_STREAM_BODY_TEMPLATE = `{
  "event": {
    "kind": "{{ event.kind }}",
    "id": "{{ event.id }}",
    "timestamp": {{ event.timestamp }},
    "datetime": "{{ event.datetime }}",
    "app_id": "{{ event.app_id }}",
    "subscription_device_type": "{{ event.subscription_device_type }}",
    "subscription_id": "{{ event.subscription_id }}",
    "onesignal_id": "{{ event.onesignal_id }}",
    "external_id": "{{ event.external_id }}",
    "data": {
      "failure_reason": "{{ event.data.failure_reason }}",
      "page_name": "{{ event.data.page_name }}",
      "page_id": "{{ event.data.page_id }}",
      "target_name": "{{ event.data.target_name }}",
      "target_id": "{{ event.data.target_id }}",
      "live_activity_id": "{{ event.data.live_activity_id }}",
      "live_activity_type": "{{ event.data.live_activity_type }}"
    }
  },
  "message": {
    "id": "{{ message.id }}",
    "name": "{{ message.name }}",
    "template_id": "{{ message.template_id }}",
    "url": "{{ message.url }}"
  },
  "user": {
    "external_id": "{{ user.external_id }}",
    "onesignal_id": "{{ user.onesignal_id }}",
    "language": "{{ user.language }}",
    "tags": {{ user.tags }}
  }
}`;
