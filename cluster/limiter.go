package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lobbychat/ircd/accounts"
)

// Limiter is the login limiter of the whole cluster: the lockout per
// account name and the throttle per address hold whichever node the
// attempts reach. Its records live in a KV bucket ("n.<name>",
// "a.<address>") and change by compare-and-set, under the same rules as
// the in-process accounts.LoginLimiter (accounts.LimiterPolicy's
// methods): a check in flight counts before the password is looked at.
// Wrong passwords are fingerprinted with a key the nodes share, kept in
// the bucket.
type Limiter struct {
	n      *Node
	policy atomic.Pointer[accounts.LimiterPolicy]
	key    []byte
}

const limiterKeyName = "hmac-key"

// Limiter returns the cluster's login limiter with policy p.
func (n *Node) Limiter(ctx context.Context, p accounts.LimiterPolicy) (*Limiter, error) {
	l := &Limiter{n: n}
	l.policy.Store(&p)
	// The first node makes the key; the others read it.
	var k [32]byte
	rand.Read(k[:])
	octx, cancel := n.op(ctx)
	defer cancel()
	if _, err := n.logins.Create(octx, limiterKeyName, k[:]); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, unavailable("creating the limiter's key", err)
	}
	e, err := n.logins.Get(octx, limiterKeyName)
	if err != nil {
		return nil, unavailable("reading the limiter's key", err)
	}
	l.key = e.Value()
	return l, nil
}

// SetPolicy changes the limits (a config reload); records are kept.
func (l *Limiter) SetPolicy(p accounts.LimiterPolicy) { l.policy.Store(&p) }

func (l *Limiter) now() time.Time { return l.n.cfg.Now() }

// update applies fn to the record at k with compare-and-set, retrying
// when another node changed it first. fn returns false to leave it as it
// was. A record that is idle afterwards is deleted.
func update[R any](ctx context.Context, l *Limiter, k string, fn func(r *R) bool, idle func(r *R) bool) error {
	if err := l.n.down(); err != nil {
		return err
	}
	ctx, cancel := l.n.op(ctx)
	defer cancel()
	for range 20 {
		var r R
		var rev uint64
		e, err := l.n.logins.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		case err != nil:
			return err
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				r = *new(R) // a damaged record starts over
			}
		}
		if !fn(&r) {
			return nil
		}
		switch {
		case idle(&r) && rev == 0:
			return nil
		case idle(&r):
			err = l.n.logins.Delete(ctx, k, jetstream.LastRevision(rev))
		case rev == 0:
			var v []byte
			v, _ = json.Marshal(&r)
			_, err = l.n.logins.Create(ctx, k, v)
		default:
			var v []byte
			v, _ = json.Marshal(&r)
			_, err = l.n.logins.Update(ctx, k, v, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		return err
	}
	return errors.New("too many concurrent changes")
}

func nameKey(name string) string { return "n." + key(accounts.Fold(name)) }
func addrKey(addr string) string { return "a." + key(addr) }

func nameIdle(r *accounts.NameRecord) bool { return r.Idle() }
func addrIdle(r *accounts.AddrRecord) bool { return r.Idle() }

// Begin reserves a password check for name from addr, or refuses it.
func (l *Limiter) Begin(name, password, addr string) (accounts.Attempt, accounts.Verdict) {
	p := *l.policy.Load()
	fp := accounts.NewFingerprint(l.key, password)
	ctx := context.Background()
	now := l.now()
	refused := func(err error) (accounts.Attempt, accounts.Verdict) {
		l.n.log.Error("login limiter unreachable", "err", err)
		return nil, accounts.Verdict{Result: accounts.Unavailable}
	}
	var verdict accounts.Verdict
	ok := false
	at := &attempt{l: l, p: p, name: name, addr: addr, fp: fp, names: p.MaxFailures > 0 && p.Lockout > 0,
		addrs: p.AddrFailures > 0 && p.AddrWindow > 0}
	// The address first, only looked at; then the name, reserved; then
	// the address, reserved, undoing the name if the address filled up
	// meanwhile. A limit that is off costs nothing (a thousand logins at
	// once from one address would all write its record).
	if at.addrs {
		err := update(ctx, l, addrKey(addr), func(a *accounts.AddrRecord) bool {
			verdict, ok = p.CheckAddr(a, now)
			return false
		}, addrIdle)
		if err != nil {
			return refused(err)
		}
		if !ok {
			return nil, verdict
		}
	}
	// The name is looked at even with the lockout off: a lock that was
	// started before the policy changed still holds.
	err := update(ctx, l, nameKey(name), func(n *accounts.NameRecord) bool {
		if verdict, ok = p.CheckName(n, fp, now); ok {
			p.Reserve(n, nil, now)
		}
		return ok
	}, nameIdle)
	if err != nil {
		return refused(err)
	}
	if !ok {
		return nil, verdict
	}
	if !at.addrs {
		return at, accounts.Verdict{Result: accounts.OK}
	}
	err = update(ctx, l, addrKey(addr), func(a *accounts.AddrRecord) bool {
		if verdict, ok = p.CheckAddr(a, now); ok {
			p.Reserve(nil, a, now)
		}
		return ok
	}, addrIdle)
	if err != nil || !ok {
		update(ctx, l, nameKey(name), func(n *accounts.NameRecord) bool {
			n.Inflight = max(n.Inflight-1, 0)
			return true
		}, nameIdle)
		if err != nil {
			return refused(err)
		}
		return nil, verdict
	}
	return at, accounts.Verdict{Result: accounts.OK}
}

// Locked reports whether name is locked now, anywhere in the cluster.
func (l *Limiter) Locked(name string) (time.Duration, bool) {
	p := *l.policy.Load()
	var remaining time.Duration
	var locked bool
	update(context.Background(), l, nameKey(name), func(n *accounts.NameRecord) bool {
		p.RefreshName(n, l.now())
		if !n.Until.IsZero() {
			remaining, locked = n.Until.Sub(l.now()), true
		}
		return false
	}, nameIdle)
	return remaining, locked
}

type attempt struct {
	l            *Limiter
	p            accounts.LimiterPolicy
	name, addr   string
	fp           accounts.Fingerprint
	names, addrs bool // which records it reserved on
	done         atomic.Bool
}

// Done resolves the check on both records.
func (at *attempt) Done(ok bool) (lockStarted bool) {
	if at.done.Swap(true) {
		return false
	}
	l, p := at.l, at.p
	ctx := context.Background()
	now := l.now()
	counted := !ok
	err := update(ctx, l, nameKey(at.name), func(n *accounts.NameRecord) bool {
		lockStarted, counted = p.ResolveName(n, ok, at.fp, now)
		return true
	}, nameIdle)
	if err != nil {
		l.n.log.Error("login limiter: recording a check", "err", err)
	}
	if !at.addrs {
		return lockStarted
	}
	if err := update(ctx, l, addrKey(at.addr), func(a *accounts.AddrRecord) bool {
		p.ResolveAddr(a, counted, now)
		return true
	}, addrIdle); err != nil {
		l.n.log.Error("login limiter: recording a check", "err", err)
	}
	return lockStarted
}
