package urpc

import (
	"sync"
	"testing"
)

func TestConcurrentClients(t *testing.T) {
	srv, _ := newTestServer(t)
	path := listen(t, srv)
	shared := dial(t, path)

	const (
		ownClients    = 20
		sharedWorkers = 10
		calls         = 50
	)
	var wg sync.WaitGroup
	run := func(c *Client, id int) {
		defer wg.Done()
		for i := range calls {
			var r AddResult
			if err := c.Call("Arith.Add", &AddArgs{A: id, B: i}, &r); err != nil {
				t.Errorf("worker %d call %d: %v", id, i, err)
				return
			}
			if r.Sum != id+i {
				t.Errorf("worker %d call %d: Sum = %d, want %d", id, i, r.Sum, id+i)
				return
			}
		}
	}
	for id := range ownClients {
		c := dial(t, path)
		wg.Add(1)
		go run(c, id*1000)
	}
	for id := range sharedWorkers {
		wg.Add(1)
		go run(shared, -id*1000)
	}
	wg.Wait()
}

// TestStopWaitsForHandlers checks that Stop closes live connections and
// returns once their handlers are done.
func TestStopWaitsForHandlers(t *testing.T) {
	srv, _ := newTestServer(t)
	path := listen(t, srv)
	var clients []*Client
	for range 5 {
		c := dial(t, path)
		if err := c.Call("Arith.Add", &AddArgs{}, &AddResult{}); err != nil {
			t.Fatalf("Call: %v", err)
		}
		clients = append(clients, c)
	}
	srv.Stop()
	srv.mu.Lock()
	n := len(srv.conns)
	srv.mu.Unlock()
	if n != 0 {
		t.Errorf("%d connections still tracked after Stop", n)
	}
	for _, c := range clients {
		if err := c.Call("Arith.Add", &AddArgs{}, &AddResult{}); err == nil {
			t.Error("Call after Stop succeeded")
		}
	}
}
