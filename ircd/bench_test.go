package ircd

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// BenchmarkReadParseLine: the per-line cost on the read side.
func BenchmarkReadParseLine(b *testing.B) {
	line := "@+draft/reply=abc :alice!alice@127.0.0.1 PRIVMSG #lobby :hello there, this is a typical chat line\r\n"
	data := strings.Repeat(line, 1000)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	var lr *lineReader
	for i := 0; i < b.N; i++ {
		if i%1000 == 0 {
			lr = &lineReader{r: strings.NewReader(data)}
		}
		l, err := lr.readLine()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseMessage(string(l)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeBroadcast: encoding one channel line for one form.
func BenchmarkEncodeBroadcast(b *testing.B) {
	c := &client{account: "alice", prefix: "alice!alice@127.0.0.1"}
	t := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f := form(i % numForms)
		appendMessage(nil, f.tagString(t, c.account, "", ""), c.prefix, "PRIVMSG", "#lobby", "hello there, this is a typical chat line")
	}
}

// BenchmarkSendQueue: queueing lines and flushing them to a socket that
// drains as fast as it can (one flusher per burst, one writev per round).
func BenchmarkSendQueue(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
		}
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	q := newSendQueue(conn, 1<<30, time.Minute, nil)
	line := []byte(":alice!alice@127.0.0.1 PRIVMSG #lobby :hello there, this is a typical chat line\r\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.push(line)
	}
	q.closeAfter(nil)
	<-q.done
}

// BenchmarkChannelFanout: one broadcast to 1,000 members (queueing only;
// their flushers write to sockets drained by the kernel).
func BenchmarkChannelFanout(b *testing.B) {
	ts := startServer(b)
	ch := newRoom("#lobby", "", "irc.test", time.Now())
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	sender := &client{prefix: "alice!alice@127.0.0.1", account: "alice"}
	for range 1000 {
		conn, _ := net.Dial("tcp", l.Addr().String())
		defer conn.Close()
		m := &client{srv: ts.srv}
		m.out = newSendQueue(conn, 1<<30, time.Minute, nil)
		ch.add(m)
	}
	t := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch.broadcast(fanout{sender: sender, prefix: sender.prefix, build: func(f form) []byte {
			return appendMessage(nil, f.tagString(t, sender.account, "", ""), sender.prefix, "PRIVMSG", "#lobby", "hello there")
		}})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/delivery")
}
