package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Silences keeps each account's block list as one key of a KV bucket
// (the masks, one a line, in the order added), changed with
// compare-and-set so two nodes never lose each other's change.
type Silences struct{ n *Node }

func (s *Silences) get(ctx context.Context, account string) (masks []string, rev uint64, err error) {
	if err := s.n.down(); err != nil {
		return nil, 0, err
	}
	e, err := s.n.silences.Get(ctx, key(account))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, unavailable("reading a silence list", err)
	}
	if len(e.Value()) > 0 {
		masks = strings.Split(string(e.Value()), "\n")
	}
	return masks, e.Revision(), nil
}

// Silences returns account's masks in the order they were added.
func (s *Silences) Silences(ctx context.Context, account string) ([]string, error) {
	ctx, cancel := s.n.op(ctx)
	defer cancel()
	masks, _, err := s.get(ctx, account)
	return masks, err
}

// AddSilence adds mask to account's list; added is false if it was there.
func (s *Silences) AddSilence(ctx context.Context, account, mask string) (bool, error) {
	return s.change(ctx, account, func(masks []string) ([]string, bool) {
		if slices.Contains(masks, mask) {
			return masks, false
		}
		return append(masks, mask), true
	})
}

// RemoveSilence removes mask from account's list; removed is false if it
// was not there.
func (s *Silences) RemoveSilence(ctx context.Context, account, mask string) (bool, error) {
	return s.change(ctx, account, func(masks []string) ([]string, bool) {
		i := slices.Index(masks, mask)
		if i < 0 {
			return masks, false
		}
		return slices.Delete(masks, i, i+1), true
	})
}

func (s *Silences) change(ctx context.Context, account string, edit func([]string) ([]string, bool)) (bool, error) {
	ctx, cancel := s.n.op(ctx)
	defer cancel()
	k := key(account)
	for range 10 {
		masks, rev, err := s.get(ctx, account)
		if err != nil {
			return false, err
		}
		masks, changed := edit(masks)
		if !changed {
			return false, nil
		}
		val := []byte(strings.Join(masks, "\n"))
		switch {
		case rev == 0:
			_, err = s.n.silences.Create(ctx, k, val)
		case len(masks) == 0:
			err = s.n.silences.Delete(ctx, k, jetstream.LastRevision(rev))
		default:
			_, err = s.n.silences.Update(ctx, k, val, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // changed meanwhile by another node: read it again
		}
		if err != nil {
			return false, unavailable("saving a silence list", err)
		}
		return true, nil
	}
	return false, unavailable("saving a silence list", errors.New("too many concurrent changes"))
}
