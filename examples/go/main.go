// Command producer sends one contact.upsert to ctct-sync and waits for its result
// (amqp091-go): producer EMAIL [FIRST_NAME]. Settings: CTCT_SYNC__AMQP__URL and
// CTCT_SYNC__AMQP__COMMANDS_QUEUE (the daemon's, with its defaults), CTCT_WAIT_SECONDS (30),
// CTCT_COMMAND_ID (a new random id). Prints the result as JSON; exit code 0 succeeded,
// 1 failed or rejected, 2 not sent, 3 no result in time (see ../README.md).
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func env(key, fallback string) string {
	if value := os.Getenv(key); value != "" {
		return value
	}
	return fallback
}

// exit prints "error: …" and ends the program with code 2 when err is set.
func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		exit(fmt.Errorf("usage: producer EMAIL [FIRST_NAME]"))
	}
	data := map[string]string{"email": os.Args[1]}
	if len(os.Args) == 3 {
		data["first_name"] = os.Args[2]
	}
	queue := env("CTCT_SYNC__AMQP__COMMANDS_QUEUE", "ctct.commands")
	wait, err := strconv.ParseFloat(env("CTCT_WAIT_SECONDS", "30"), 64)
	exit(err)
	random := make([]byte, 16)
	_, err = rand.Read(random)
	exit(err)
	id := env("CTCT_COMMAND_ID", fmt.Sprintf("%x", random))
	body, err := json.Marshal(map[string]any{"id": id, "type": "contact.upsert", "data": data})
	exit(err)

	conn, err := amqp.Dial(env("CTCT_SYNC__AMQP__URL", "amqp://guest:guest@127.0.0.1:5672/%2f"))
	exit(err)
	defer conn.Close()
	ch, err := conn.Channel()
	exit(err)
	exit(ch.Confirm(false))
	returns := ch.NotifyReturn(make(chan amqp.Return, 1)) // comes before the broker's confirm
	// A private, server-named queue (amq.gen-…) for the reply: ctct-sync answers there.
	replies, err := ch.QueueDeclare("", false, true, true, false, nil)
	exit(err)
	deliveries, err := ch.Consume(replies.Name, "", true, true, false, false, nil)
	exit(err)
	confirm, err := ch.PublishWithDeferredConfirm("", queue, true, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body,
		MessageId: id, CorrelationId: id, ReplyTo: replies.Name,
	})
	exit(err)
	if !confirm.Wait() {
		exit(fmt.Errorf("the broker did not confirm the command"))
	}
	select {
	case <-returns:
		exit(fmt.Errorf("queue %s does not exist: start the daemon once", queue))
	default:
	}
	fmt.Fprintf(os.Stderr, "sent contact.upsert %s\n", id)

	timeout := time.After(time.Duration(wait * float64(time.Second)))
	for {
		select {
		case d, open := <-deliveries:
			if !open {
				exit(fmt.Errorf("the reply queue closed"))
			}
			var result struct{ Outcome string }
			if d.CorrelationId != id || json.Unmarshal(d.Body, &result) != nil {
				continue
			}
			var pretty bytes.Buffer
			exit(json.Indent(&pretty, d.Body, "", "  "))
			fmt.Println(pretty.String())
			conn.Close()
			if result.Outcome != "succeeded" {
				os.Exit(1)
			}
			return
		case <-timeout:
			fmt.Fprintf(os.Stderr, "no result within %g s; the command is queued (id %s)\n", wait, id)
			os.Exit(3)
		}
	}
}
