#!/usr/bin/env python3
"""Send one contact.upsert to ctct-sync and wait for its result (pika).

Usage: producer.py EMAIL [FIRST_NAME]

Environment (the daemon's own settings and defaults, plus two of this program's):
  CTCT_SYNC__AMQP__URL             amqp://guest:guest@127.0.0.1:5672/%2f
  CTCT_SYNC__AMQP__COMMANDS_QUEUE  ctct.commands
  CTCT_WAIT_SECONDS                30
  CTCT_COMMAND_ID                  a new UUID (re-send with the same id after a time-out)

Prints the result as JSON. Exit code: 0 succeeded, 1 failed or rejected, 2 not sent
(RabbitMQ unreachable, no commands queue, publish not confirmed), 3 no result in time.
"""
import json
import os
import sys
import time
import uuid

import pika


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    data = {"email": sys.argv[1]}
    if len(sys.argv) == 3:
        data["first_name"] = sys.argv[2]
    url = os.environ.get("CTCT_SYNC__AMQP__URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
    queue = os.environ.get("CTCT_SYNC__AMQP__COMMANDS_QUEUE", "ctct.commands")
    wait = float(os.environ.get("CTCT_WAIT_SECONDS", "30"))
    command_id = os.environ.get("CTCT_COMMAND_ID") or str(uuid.uuid4())

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    # A private, server-named queue (amq.gen-…) for the reply: ctct-sync answers there.
    replies = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
    body = {"id": command_id, "type": "contact.upsert", "data": data}
    properties = pika.BasicProperties(
        content_type="application/json", delivery_mode=2, message_id=command_id,
        correlation_id=command_id, reply_to=replies)
    try:
        channel.basic_publish("", queue, json.dumps(body), properties, mandatory=True)
    except pika.exceptions.UnroutableError:
        print(f"error: queue {queue} does not exist: start the daemon once", file=sys.stderr)
        return 2
    except pika.exceptions.NackError:
        print("error: the broker did not confirm the command", file=sys.stderr)
        return 2
    print(f"sent contact.upsert {command_id}", file=sys.stderr)

    deadline = time.monotonic() + wait
    for _method, props, payload in channel.consume(replies, auto_ack=True, inactivity_timeout=0.5):
        if props is not None and props.correlation_id == command_id:
            result = json.loads(payload)
            print(json.dumps(result, indent=2))
            connection.close()
            return 0 if result["outcome"] == "succeeded" else 1
        if time.monotonic() >= deadline:
            print(f"no result within {wait:g} s; the command is queued (id {command_id})",
                  file=sys.stderr)
            connection.close()
            return 3


if __name__ == "__main__":
    try:
        sys.exit(main())
    except pika.exceptions.AMQPError as error:
        print(f"error: {error!r}", file=sys.stderr)
        sys.exit(2)
