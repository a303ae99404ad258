package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestKill9 kills (SIGKILL) a process committing records at full speed,
// then checks on restart that every acknowledged record is durable and
// that every durable record is in the log exactly once.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("AUDIT_KILL9_DIR"); dir != "" {
		kill9Child(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), "AUDIT_KILL9_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, err := strconv.Atoi(sc.Text()); err == nil {
			acked = n
			if n >= 3000 {
				break
			}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if acked < 3000 {
		t.Fatalf("child acknowledged only %d records", acked)
	}

	e := open(t, dir)
	ctx := context.Background()
	var stored int64
	for after := int64(0); ; {
		rows, err := e.store.Rows(ctx, after, 1000, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		stored += int64(len(rows))
		after = rows[len(rows)-1].Seq
	}
	if stored < int64(acked) {
		t.Fatalf("%d records acknowledged, %d stored", acked, stored)
	}
	e.close()
	checkExactlyOnce(t, dir, stored)
}

func kill9Child(t *testing.T, dir string) {
	e := open(t, dir)
	var n atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; ; i += 16 {
				if _, err := e.trail.Commit(context.Background(), testRecord(i)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				if c := n.Add(1); c%100 == 0 {
					mu.Lock()
					fmt.Println(c) // only counts acknowledged records (at least)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}
