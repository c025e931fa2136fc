package e2e

// `make screenshots` also runs TestWebScreenshots with
// E2E_SCREENSHOTS=docs/img: the built-in web client in headless Chromium,
// logged in as alice while bob, carol and dave (raw connections) talk in
// #lobby and bob writes to her privately, saved as
// web-desktop-{light,dark}.png (1280x800) and web-phone-{light,dark}.png
// (390x844, mobile emulation); dark is the emulated
// prefers-color-scheme: dark.

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

func TestWebScreenshots(t *testing.T) {
	outDir := screenshotDir(t, "web-desktop-light.png, web-desktop-dark.png, web-phone-light.png and web-phone-dark.png")
	// The shipped config and accounts (and dave), as in TestScreenshots:
	// its web listener (or one), on ports the server picks.
	cfg, users := shippedConfig(t)
	if !regexp.MustCompile(`(?m)^\[web\]`).MatchString(cfg) {
		cfg += "\n" + webConfig
	}
	s := startServerConfig(t, t.TempDir(), cfg, users+"dave davepw\n")
	br := startChromium(t)

	bob := rawIn(t, s, "bob")
	carol := rawIn(t, s, "carol")
	dave := rawIn(t, s, "dave")
	raws := map[string]*rawClient{"bob": bob, "carol": carol, "dave": dave}
	// say has a raw user talk in #lobby and waits until the others have
	// it (so the order is the order of the script).
	say := func(from, text string) {
		t.Helper()
		raws[from].Send("PRIVMSG #lobby :%s", text)
		for n, c := range raws {
			if n != from {
				c.Expect(`:`+from+`!\S+ PRIVMSG #lobby :`, webWait)
			}
		}
	}
	// Before alice comes: she gets these from the history.
	say("bob", "Morning all! Coffee in the kitchen at 10?")
	say("carol", "Count me in.")
	say("dave", "Same here, I'll bring biscuits.")

	p := openPage(t, br, s, "alice", "")
	p.LoginOK("alice", "alicepw")
	p.WaitLine("#lobby", "dave", "biscuits")
	bob.Expect(`:alice!\S+ JOIN :?#lobby`, webWait)
	p.Type("Morning! Just back from the station, see you at 10.")
	p.WaitLine("#lobby", "alice", "station")
	say("carol", "Has anyone seen the new release notes?")
	carol.Send("PRIVMSG #lobby :\x01ACTION waves at alice\x01")
	p.WaitLine("#lobby", "carol", "waves at alice")
	say("dave", "They're on the wiki, under Releases.")
	say("bob", "Reminder: the build server restarts at noon.")
	p.WaitLine("#lobby", "bob", "noon")
	p.Type("Thanks, I'll push my branch before then.")
	p.WaitLine("#lobby", "alice", "push my branch")
	say("carol", "Lunch at the usual place afterwards?")
	say("dave", "Sounds good.")
	p.WaitLine("#lobby", "dave", "Sounds good")
	// A private message while #lobby is in front: bob's tab counts it.
	bob.Send("PRIVMSG alice :Could you send me the slides before the meeting?")
	bob.Send("PRIVMSG alice :No rush, after lunch is fine.")
	p.WaitLine("bob", "bob", "after lunch")
	p.waitJS("an unread count on bob's tab", webWait, `/[1-9]/.test(txt(tab('bob').querySelector('.unread')))`)
	p.waitJS("the nick list", webWait, `['alice', 'bob', 'carol', 'dave'].every(n => !!$('#nicklist li[data-nick="' + n + '"]'))`)
	p.waitJS("#lobby in front", webWait, `tab('#lobby').getAttribute('aria-selected') === 'true'`)

	shot := func(name string, width, height int64, mobile bool, dark bool) {
		t.Helper()
		scheme := "light"
		if dark {
			scheme = "dark"
		}
		err := p.do(webWait, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
				Width: width, Height: height, DeviceScaleFactor: 1, Mobile: mobile,
			}); err != nil {
				return err
			}
			if _, err := chromedp.Call(ctx, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: mobile}); err != nil {
				return err
			}
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			})
			return err
		}))
		must(t, err)
		p.waitJS("prefers-color-scheme: "+scheme, webWait, `matchMedia('(prefers-color-scheme: `+scheme+`)').matches && innerWidth === `+js(width))
		// The pointer off the lines (it was left where the sign-in button
		// was, and would highlight a line under it).
		must(t, p.do(webWait, chromedp.MouseEvent(chromedp.MouseMoved, float64(width)/2, float64(height)-120)))
		// Scroll the log to its end, as the page keeps it, and let two
		// frames draw the new layout.
		p.waitJS("the layout", webWait, `(() => { const l = log('#lobby'); if (l) l.scrollTop = l.scrollHeight; return true; })()`)
		ctx, cancel := context.WithTimeout(p.ctx, webWait)
		defer cancel()
		_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, chromedp.EvalAwaitPromise))
		must(t, err)
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		must(t, err)
		path := filepath.Join(outDir, name)
		must(t, os.WriteFile(path, png, 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}
	start := time.Now()
	shot("web-desktop-light.png", 1280, 800, false, false)
	shot("web-desktop-dark.png", 1280, 800, false, true)
	shot("web-phone-light.png", 390, 844, true, false)
	shot("web-phone-dark.png", 390, 844, true, true)
	t.Logf("four screenshots in %v", time.Since(start).Round(time.Millisecond))
}
