package console_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/crossroads-hub/crossroads/console/consoletest"
	"github.com/crossroads-hub/crossroads/demo"
)

// The browser tests drive a real headless Chromium (Debian package
// chromium) through the console against the demo network. They are
// skipped when Chromium is absent, unless CI or CROSSROADS_REQUIRE_BROWSER=1
// is set. On failure a screenshot goes to CROSSROADS_SCREENSHOTS (default:
// the test's temporary directory); with CROSSROADS_DOCS_SCREENSHOTS=dir
// each role's main page is written there (docs/console/).

func chromium(t *testing.T) string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" || os.Getenv("CROSSROADS_REQUIRE_BROWSER") == "1" {
		t.Fatal("chromium is required (apt-get install -y chromium)")
	}
	t.Skip("chromium not installed: the browser tests are skipped (set CROSSROADS_REQUIRE_BROWSER=1 to require them)")
	return ""
}

// browser starts a fresh Chromium (its own profile: no cookies).
func browser(t *testing.T) context.Context {
	path := chromium(t)
	// chromedp's defaults (headless, no first run, no background
	// networking, no sync, …) and what the closed network needs: no QUIC,
	// no component updates, a fresh profile.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		// The demo's hub and identity provider have certificates of their own.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 900),
		// One renderer across the console and the identity provider: a
		// cross-site navigation must not swap the tab's process.
		chromedp.Flag("disable-site-isolation-trials", true),
		chromedp.Flag("disable-features", "site-per-process,IsolateOrigins,Translate,BlinkGenPropertyTrees"),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// Start the browser and its tab on this context: the tab lives as long
	// as the context of its first run.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// step runs actions; on failure it saves a screenshot and fails the test.
func step(t *testing.T, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		dir := os.Getenv("CROSSROADS_SCREENSHOTS")
		if dir == "" {
			dir = t.TempDir()
		}
		if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
			f := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".png")
			os.WriteFile(f, png, 0o644)
			t.Logf("screenshot: %s", f)
		}
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", name, loc, err)
	}
}

// nav navigates and waits for the page (chromedp.RunResponse: a plain
// Navigate after an earlier navigation can miss the load event).
func nav(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(c, chromedp.Navigate(url)); err != nil {
		step(t, ctx, "navigate", chromedp.Func(func(context.Context, *chromedp.Target) error { return err }))
	}
}

// docShot writes a page's screenshot for docs/console.md.
func docShot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("CROSSROADS_DOCS_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// accessible checks the page as far as no axe-like Go library does it:
// a lang attribute, a label for every visible form control, and a text
// contrast of at least 4.5:1 (WCAG 2.1 AA) for every text element.
func accessible(t *testing.T, ctx context.Context) {
	t.Helper()
	if lang := eval[string](t, ctx, `document.documentElement.lang`); lang == "" {
		t.Error("no lang attribute")
	}
	unlabelled := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("input:not([type=hidden]),select,textarea")).filter(e => !(e.id && document.querySelector("label[for='"+e.id+"']")) && !e.getAttribute("aria-label")).map(e => e.name)`)
	if len(unlabelled) > 0 {
		t.Errorf("controls without a label: %v", unlabelled)
	}
	low := eval[[]string](t, ctx, `(() => {
  const lum = (c) => { const m = c.match(/[\d.]+/g).map(Number); const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]); };
  const bg = (e) => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor; if (!c.startsWith("rgba(0, 0, 0, 0)")) return c; } return "rgb(255, 255, 255)"; };
  const out = [];
  for (const e of document.querySelectorAll("body *")) {
    if (!e.offsetParent || ![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const a = lum(getComputedStyle(e).color), b = lum(bg(e));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push(e.tagName + ": " + ratio.toFixed(2));
  }
  return out;
})()`)
	if len(low) > 0 {
		t.Errorf("text below 4.5:1 contrast: %v", low)
	}
}

// login signs in through the console and the demo provider's login page.
func login(t *testing.T, ctx context.Context, base, user, landing string) {
	nav(t, ctx, base+"/console/?lang=en")
	nav(t, ctx, base+"/console/login?login_hint="+user)
	step(t, ctx, "login "+user,
		chromedp.WaitVisible("#username"),
		chromedp.Click("#submit"),
		chromedp.WaitVisible(landing),
	)
}

func TestBrowser(t *testing.T) {
	chromium(t)
	n := consoletest.Start(t)
	me, other := n.People[0], n.People[1]
	for _, p := range []demo.Person{me, other, other} {
		if st := n.Exchange(t, demo.OCMW, demo.ServicePerson, "persons/"+p.INSZ, "social-aid", p.INSZ); st != http.StatusOK {
			t.Fatalf("exchange: %d", st)
		}
	}
	waitLogged(t, n)

	t.Run("citizen", func(t *testing.T) {
		ctx := browser(t)
		login(t, ctx, n.ConsoleURL, me.INSZ, "#exchanges")
		if rows := eval[int](t, ctx, `document.querySelectorAll("#exchanges tbody tr").length`); rows != 1 {
			t.Fatalf("the citizen sees %d exchanges, want exactly their own one", rows)
		}
		if txt := eval[string](t, ctx, `document.querySelector("#exchanges").innerText`); !strings.Contains(txt, "OCMW Gent") || !strings.Contains(txt, "Social assistance") {
			t.Fatalf("exchanges: %s", txt)
		}
		step(t, ctx, "verify", chromedp.Click("#exchanges button.verify"), chromedp.WaitVisible("#exchanges .result.ok"))
		res := eval[string](t, ctx, `document.querySelector("#exchanges .result").textContent`)
		if !strings.Contains(res, "Verified") || strings.Contains(res, "not checked") {
			t.Fatalf("verification in the browser: %s", res)
		}
		accessible(t, ctx)
		docShot(t, ctx, "citizen")
		// Logout, and the page is closed.
		step(t, ctx, "logout", chromedp.Click("form.logout button"), chromedp.WaitVisible("#h-citizen"))
		nav(t, ctx, n.ConsoleURL+"/console/me")
		step(t, ctx, "after logout", chromedp.WaitVisible("p.error"))
	})

	t.Run("operator", func(t *testing.T) {
		ctx := browser(t)
		login(t, ctx, n.ConsoleURL, "alice.operator", "#authorisation-table")
		accessible(t, ctx)
		docShot(t, ctx, "operator")
		step(t, ctx, "suspend",
			chromedp.SetValue("#st-ocmw-social-aid", "suspended"),
			chromedp.Click("#au-ocmw-social-aid button"),
			chromedp.WaitVisible("#diff"))
		if diff := eval[string](t, ctx, `document.querySelector("#diff").textContent`); !strings.Contains(diff, "suspended") {
			t.Fatalf("diff: %s", diff)
		}
		docShot(t, ctx, "operator-diff")
		step(t, ctx, "confirm", chromedp.Click("#confirm"), chromedp.WaitVisible("p.notice"))
		if st := n.Exchange(t, demo.OCMW, demo.ServicePerson, "persons/"+me.INSZ, "social-aid", me.INSZ); st != http.StatusForbidden {
			t.Fatalf("exchange after the suspension: %d", st)
		}
		// The operator sees the denial it caused.
		nav(t, ctx, n.ConsoleURL+"/console/audit?search=1&outcome=denied&participant="+demo.OCMW)
		step(t, ctx, "denials", chromedp.WaitVisible("#records"))
		if txt := eval[string](t, ctx, `document.querySelector("#records").innerText`); !strings.Contains(txt, "denied") {
			t.Fatalf("no denial shown: %s", txt)
		}
		// A form of this session sent with another token is refused.
		status := eval[float64](t, ctx, `(async () => { const f = new FormData(); f.set("csrf", "forged"); f.set("status", "active");
  const r = await fetch("/console/ops/authorisations/ocmw-social-aid/status", {method: "POST", body: f}); return r.status; })()`)
		if status != 403 {
			t.Fatalf("forged token: %v", status)
		}
	})

	t.Run("auditor", func(t *testing.T) {
		ctx := browser(t)
		login(t, ctx, n.ConsoleURL, "bob.auditor", "form[role=search]")
		step(t, ctx, "search", chromedp.SetValue("#q-participant", demo.OCMW),
			chromedp.Click("form[role=search] button"), chromedp.WaitVisible("#records"),
			chromedp.Click("#records button.verify"), chromedp.WaitVisible("#records .result.ok"))
		accessible(t, ctx)
		docShot(t, ctx, "auditor")
		nav(t, ctx, n.ConsoleURL+"/console/gdpr?incident=2026-12-01T08:00")
		step(t, ctx, "gdpr", chromedp.WaitVisible("#timeline"))
		accessible(t, ctx)
		docShot(t, ctx, "gdpr")
	})

	t.Run("session fixation", func(t *testing.T) {
		// A cookie planted on the hub's origin before login (as a sibling
		// site could try) is replaced at login, and opens nothing.
		ctx := browser(t)
		nav(t, ctx, n.ConsoleURL+"/console/register")
		eval[any](t, ctx, `document.cookie = "__Host-crossroads-console=planted; Path=/; Secure"`)
		login(t, ctx, n.ConsoleURL, me.INSZ, "#exchanges")
		b := n.Browser(t, "")
		b.Jar.SetCookies(mustURL(n.ConsoleURL), []*http.Cookie{{Name: "__Host-crossroads-console", Value: "planted", Path: "/", Secure: true}})
		if st, _ := b.Get("/console/me"); st != http.StatusUnauthorized {
			t.Fatalf("planted session id opened the citizen's page: %d", st)
		}
	})
}
