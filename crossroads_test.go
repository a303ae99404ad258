package crossroads

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestActiveAt(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	a := Authorisation{Status: StatusActive, ValidFrom: from, ValidTo: to}
	for at, want := range map[time.Time]bool{from.Add(-time.Nanosecond): false, from: true, to.Add(-time.Nanosecond): true, to: false} {
		if got := a.ActiveAt(at); got != want {
			t.Errorf("authorisation ActiveAt(%s) = %v", at, got)
		}
	}
	a.ValidTo = time.Time{}
	if !a.ActiveAt(to.AddDate(10, 0, 0)) {
		t.Error("open-ended authorisation not active later")
	}
	a.Status = StatusSuspended
	if a.ActiveAt(from) {
		t.Error("suspended authorisation active")
	}
	in := Integration{From: from, To: to}
	if !in.ActiveAt(from) || in.ActiveAt(to) || in.ActiveAt(from.Add(-time.Second)) {
		t.Error("integration period is [from, to)")
	}
}

func TestValidSerial(t *testing.T) {
	for _, ok := range []string{"0", "47dcdf86339ed599db3e598046a516d8"} {
		if err := ValidSerial(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "47DC", "47:dc", "xyz", string(make([]byte, 129))} {
		if err := ValidSerial(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestCaller(t *testing.T) {
	if _, ok := CallerFrom(context.Background()); ok {
		t.Fatal("caller in an empty context")
	}
	p := &Participant{ID: "x"}
	if got, ok := CallerFrom(WithCaller(context.Background(), p)); !ok || got != p {
		t.Fatal("caller not carried")
	}
}
