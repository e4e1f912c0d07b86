package redisstore

import (
	"context"
	"time"
)

// revocationsChannel is the pub/sub channel on which nodes announce that
// they committed revocation events (SPEC §15 fan-out). The message carries
// nothing: every node reads the events themselves from the database.
func (s *Store) revocationsChannel() string { return s.prefix + "revocations" }

// PublishRevocations tells every node that revocation events committed.
func (s *Store) PublishRevocations(ctx context.Context) error {
	return s.rdb.Publish(ctx, s.revocationsChannel(), "1").Err()
}

// SubscribeRevocations calls wake for every announcement until ctx ends,
// re-subscribing after a lost connection (go-redis does so by itself) and
// calling wake once after each (re)subscription, since announcements made
// while it was away are lost.
func (s *Store) SubscribeRevocations(ctx context.Context, wake func()) {
	for ctx.Err() == nil {
		ps := s.rdb.Subscribe(ctx, s.revocationsChannel())
		if _, err := ps.Receive(ctx); err != nil {
			_ = ps.Close()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		wake()
		for {
			msg, err := ps.ReceiveMessage(ctx)
			if err != nil {
				break
			}
			if msg.Channel == s.revocationsChannel() {
				wake()
			}
		}
		_ = ps.Close()
	}
}
