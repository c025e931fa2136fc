package cluster

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lobbychat/ircd/state"
)

// Mailbox stores private messages in a JetStream stream with file
// storage, one subject per recipient and sender:
// ircd.mail.<recipient>.<sender>. A message's ID is its stream sequence,
// which grows, so each mailbox's IDs do too.
//
// A sender's share of a mailbox is the stream's per-subject limit with
// "discard new" for the subject: JetStream itself refuses the message
// past it. The total per mailbox is counted before each append, so two
// senders at the same moment can pass it by one each.
//
// Durability: the sender is told only after JetStream's acknowledgement,
// which comes once the message is written on a majority of the stream's
// replicas. A NATS server writes to the operating system at once but
// flushes to disk every sync_interval (2 minutes by default), so a crash
// of the NATS process loses nothing acknowledged, and with one replica a
// power loss can lose what was written since the last flush. Run NATS
// with jetstream { sync_interval: always } for an fsync per write (what
// the embedded store does), or three replicas on three servers.
type Mailbox struct {
	n     *Node
	limit atomic.Int64
}

func mailStreamConfig(replicas, perSender int) jetstream.StreamConfig {
	c := jetstream.StreamConfig{
		Name:              streamMail,
		Description:       "stored private messages: ircd.mail.<recipient>.<sender>",
		Subjects:          []string{subjectMail + ".>"},
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Discard:           jetstream.DiscardNew,
		MaxMsgsPerSubject: -1,
		// A sender whose delivery timed out stores the message under its
		// id; a retry within this window is the same message.
		Duplicates: 2 * time.Minute,
	}
	if perSender > 0 {
		c.MaxMsgsPerSubject = int64(perSender)
		c.DiscardNewPerSubject = true
	}
	return c
}

func mailSubject(to string) string { return subjectMail + "." + key(to) }

// SetLimits changes the mailbox limits (a config reload).
func (m *Mailbox) SetLimits(ctx context.Context, total, perSender int) error {
	m.limit.Store(int64(total))
	ctx, cancel := m.n.op(ctx)
	defer cancel()
	s, err := m.n.js.UpdateStream(ctx, mailStreamConfig(m.n.cfg.Replicas, perSender))
	if err != nil {
		return unavailable("changing the mailbox limits", err)
	}
	m.n.mail = s
	return nil
}

// count is how many messages to's mailbox holds.
func (m *Mailbox) count(ctx context.Context, to string) (int64, error) {
	info, err := m.n.mail.Info(ctx, jetstream.WithSubjectFilter(mailSubject(to)+".>"))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range info.State.Subjects {
		n += int64(c)
	}
	return n, nil
}

// Append stores msg once JetStream has acknowledged it.
func (m *Mailbox) Append(ctx context.Context, to string, msg state.Message) (state.Message, error) {
	if err := m.n.down(); err != nil {
		return msg, err
	}
	ctx, cancel := m.n.op(ctx)
	defer cancel()
	if limit := m.limit.Load(); limit > 0 {
		n, err := m.count(ctx, to)
		if err != nil {
			return msg, unavailable("counting "+to+"'s mailbox", err)
		}
		if n >= limit {
			return msg, state.ErrMailboxFull
		}
	}
	var opts []jetstream.PublishOpt
	if msg.MsgID != "" {
		opts = append(opts, jetstream.WithMsgID(msg.MsgID))
	}
	ack, err := m.n.js.Publish(ctx, mailSubject(to)+"."+key(msg.Sender), encodeMessage(msg), opts...)
	if err != nil {
		if strings.Contains(err.Error(), "maximum messages per subject exceeded") {
			return msg, state.ErrSenderShareFull
		}
		return msg, unavailable("storing a message for "+to, err)
	}
	msg.ID = ack.Sequence
	return msg, nil
}

// Pending returns to's messages, oldest first. A record that does not
// decode is skipped and logged.
func (m *Mailbox) Pending(ctx context.Context, to string) ([]state.Message, error) {
	if err := m.n.down(); err != nil {
		return nil, err
	}
	ctx, cancel := m.n.op(ctx)
	defer cancel()
	cons, err := m.n.js.OrderedConsumer(ctx, streamMail, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{mailSubject(to) + ".>"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, unavailable("reading "+to+"'s mailbox", err)
	}
	info := cons.CachedInfo()
	want := int(info.NumPending)
	var out []state.Message
	for len(out) < want {
		batch, err := cons.Fetch(min(want-len(out), 256), jetstream.FetchMaxWait(m.n.cfg.OpTimeout))
		if err != nil {
			return nil, unavailable("reading "+to+"'s mailbox", err)
		}
		got := 0
		for jm := range batch.Messages() {
			got++
			meta, err := jm.Metadata()
			if err != nil {
				continue
			}
			msg, err := decodeMessage(jm.Data())
			if err != nil {
				m.n.log.Error("skipped a damaged stored message", "to", to, "id", meta.Sequence.Stream, "err", err)
				want-- // counted in NumPending, never to be returned
				continue
			}
			msg.ID = meta.Sequence.Stream
			out = append(out, msg)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, unavailable("reading "+to+"'s mailbox", err)
		}
		if got == 0 {
			break // purged meanwhile
		}
	}
	return out, nil
}

// Ack deletes to's messages with IDs up to upTo.
func (m *Mailbox) Ack(ctx context.Context, to string, upTo uint64) error {
	if err := m.n.down(); err != nil {
		return err
	}
	ctx, cancel := m.n.op(ctx)
	defer cancel()
	err := m.n.mail.Purge(ctx, jetstream.WithPurgeSubject(mailSubject(to)+".>"), jetstream.WithPurgeSequence(upTo+1))
	if err != nil {
		return unavailable("deleting "+to+"'s delivered messages", err)
	}
	return nil
}
