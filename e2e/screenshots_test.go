package e2e

// `make screenshots` (scripts/screenshots.sh) runs TestScreenshots with
// E2E_SCREENSHOTS=docs/img: it starts the server on a temporary copy of the
// shipped config.toml and users.txt, logs alice in with irssi, bob with
// WeeChat and carol with HexChat, has them talk in #lobby, exchange a
// private message and ask WHOELSE, and saves what each client shows:
// irssi.png and weechat.png (the tmux screen, colours included, drawn with
// ImageMagick in DejaVu Sans Mono) and hexchat.png (the Xvfb display,
// import -window root).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// screenshotDir is where make screenshots wants the pictures (absolute,
// created); the test is skipped when it is not set.
func screenshotDir(t *testing.T, files string) string {
	t.Helper()
	dir := os.Getenv("E2E_SCREENSHOTS")
	if dir == "" {
		t.Skip("set E2E_SCREENSHOTS=DIR to write " + files + " there (make screenshots)")
	}
	dir, err := filepath.Abs(dir)
	must(t, err)
	must(t, os.MkdirAll(dir, 0o755))
	return dir
}

// shippedConfig is the shipped config.toml with every listener on a port
// the server picks, and the shipped users.txt: the pictures show what a
// user of make run sees.
func shippedConfig(t *testing.T) (cfg, users string) {
	t.Helper()
	shipped, err := os.ReadFile("../config.toml")
	must(t, err)
	u, err := os.ReadFile("../users.txt")
	must(t, err)
	listen := regexp.MustCompile(`(?m)^listen\s*=.*$`)
	if !listen.Match(shipped) {
		t.Fatal("no listen line in config.toml")
	}
	return listen.ReplaceAllString(string(shipped), `listen = ["127.0.0.1:0"]`), string(u)
}

func TestScreenshots(t *testing.T) {
	outDir := screenshotDir(t, "irssi.png, weechat.png and hexchat.png")
	requireTools(t, "irssi", "weechat", "tmux", "hexchat", "Xvfb", "xdotool", "dbus-daemon", "convert", "import")
	for _, f := range []string{fontRegular, fontBold} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("font %s is missing (apt-get install fonts-dejavu-core): %v", f, err)
		}
	}

	// The store goes in a temporary folder (store.path is relative to the
	// config's folder).
	cfg, users := shippedConfig(t)
	s := startServerConfig(t, t.TempDir(), cfg, users)

	hex := crossHexchat(t, s, "carol")
	irssi := crossIrssi(t, s, "alice")
	// Named "lobby" as in the guide (docs/clients.md).
	wee := &weechatChat{startWeechatNamed(t, s, "lobby", "bob", "-password=bobpw"), "bob"}
	const cols, rows = 112, 30
	irssi.tm.Resize(cols, rows)
	wee.tm.Resize(cols, rows)
	for _, c := range []chatClient{irssi, wee, hex} {
		waitInLobby(t, c)
	}
	// HexChat 2.16 prints "Failed loading notification plugin" (no
	// notification daemon on the private bus) soon after start; clear it
	// away so the picture shows the chat only.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(hex.Log(""), "Failed loading notification plugin") {
		time.Sleep(100 * time.Millisecond)
	}
	hex.Type("/clear")

	all := []chatClient{irssi, wee, hex}
	say := func(c chatClient, text string) {
		t.Helper()
		c.Say(text)
		for _, o := range others(all, c) {
			o.WaitChannel(c.Nick(), text)
		}
	}
	say(irssi, "Morning all! Coffee in the kitchen at 10?")
	say(wee, "Count me in.")
	say(hex, "Same here, I'll bring biscuits.")
	say(irssi, "Great, see you there.")

	pm := "Could you send me the slides before the meeting?"
	wee.Type("/query alice " + pm)
	irssi.WaitQuery("bob", pm, time.Now())
	reply := "Sure, sending them now."
	irssi.Msg("bob", reply)
	wee.WaitQuery("alice", reply, time.Now())
	thanks := "Thanks for the biscuits!"
	irssi.Msg("carol", thanks)
	hex.WaitQuery("alice", thanks, time.Now())

	// irssi: the status window (where server notices go) in a small split
	// above #lobby, cleared of the start-up lines, then WHOELSE.
	irssi.Type("/window goto 1")
	irssi.Type("/clear")
	irssi.Type("/window goto #lobby")
	irssi.Type("/window show 1")
	irssi.Type("/window size 6")
	irssi.Type("/window down")
	irssi.Type("/quote whoelse")
	irssi.wait("WHOELSE reply", `Online: bob carol`, irssi.allLog())
	// WeeChat: the private conversation above #lobby.
	wee.Type("/buffer irc.lobby.#lobby")
	wee.Type("/window splith 40")
	wee.Type("/buffer irc.lobby.alice")
	// HexChat: /whoelse is sent as typed; the reply is in the server tab.
	hex.Type("/whoelse")
	hex.WaitLog("", `\tOnline: alice bob$`, crossWait)

	time.Sleep(1 * time.Second) // let the clients draw the last lines
	for _, c := range []struct {
		tm   *tmuxSession
		name string
	}{{irssi.tm, "irssi.png"}, {wee.tm, "weechat.png"}} {
		screen, err := c.tm.CaptureANSI()
		must(t, err)
		path := filepath.Join(outDir, c.name)
		if err := renderTerminal(screen, cols, rows, path); err != nil {
			t.Fatalf("rendering %s: %v", path, err)
		}
		t.Logf("wrote %s", path)
	}
	hexchatScreenshot(t, hex.Display, filepath.Join(outDir, "hexchat.png"))
	t.Logf("wrote %s", filepath.Join(outDir, "hexchat.png"))
}

// ---- a terminal screen (tmux capture-pane -e) to a PNG ----

const (
	fontRegular = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
	fontBold    = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
	termPoint   = 14 // DejaVu Sans Mono at 14pt (72 dpi): 8px advance
	cellW       = 8
	cellH       = 17
	cellAscent  = 13
	termPad     = 8
	termFg      = "#d3d7cf"
	termBg      = "#1e1e1e"
)

// The 16 basic colours (Tango); 16-255 are the xterm cube and greys.
var basicColors = [16]string{
	"#2e3436", "#cc0000", "#4e9a06", "#c4a000", "#3465a4", "#75507b", "#06989a", "#d3d7cf",
	"#555753", "#ef2929", "#8ae234", "#fce94f", "#729fcf", "#ad7fa8", "#34e2e2", "#eeeeec",
}

func color256(n int) string {
	switch {
	case n < 16:
		return basicColors[n]
	case n < 232:
		n -= 16
		level := func(v int) int {
			if v == 0 {
				return 0
			}
			return 55 + 40*v
		}
		return fmt.Sprintf("#%02x%02x%02x", level(n/36), level(n/6%6), level(n%6))
	default:
		g := 8 + 10*(n-232)
		return fmt.Sprintf("#%02x%02x%02x", g, g, g)
	}
}

// cellStyle is the SGR state of one cell; "" colours mean the default.
type cellStyle struct {
	fg, bg                 string
	bold, reverse, underln bool
}

type cell struct {
	r  rune
	st cellStyle
}

// applySGR updates st from the parameters of one "ESC [ ... m".
func applySGR(st *cellStyle, params string) {
	if params == "" {
		params = "0"
	}
	ps := strings.Split(params, ";")
	num := func(i int) int {
		if i >= len(ps) {
			return 0
		}
		n, _ := strconv.Atoi(ps[i])
		return n
	}
	for i := 0; i < len(ps); i++ {
		p := num(i)
		switch {
		case p == 0:
			*st = cellStyle{}
		case p == 1:
			st.bold = true
		case p == 4:
			st.underln = true
		case p == 7:
			st.reverse = true
		case p == 22:
			st.bold = false
		case p == 24:
			st.underln = false
		case p == 27:
			st.reverse = false
		case p >= 30 && p <= 37:
			st.fg = basicColors[p-30]
		case p >= 90 && p <= 97:
			st.fg = basicColors[p-90+8]
		case p >= 40 && p <= 47:
			st.bg = basicColors[p-40]
		case p >= 100 && p <= 107:
			st.bg = basicColors[p-100+8]
		case p == 39:
			st.fg = ""
		case p == 49:
			st.bg = ""
		case p == 38 || p == 48:
			var c string
			if num(i+1) == 5 {
				c = color256(num(i+2) & 255)
				i += 2
			} else if num(i+1) == 2 {
				c = fmt.Sprintf("#%02x%02x%02x", num(i+2)&255, num(i+3)&255, num(i+4)&255)
				i += 4
			}
			if p == 38 {
				st.fg = c
			} else {
				st.bg = c
			}
		}
	}
}

var escSeq = regexp.MustCompile(`^\x1b\[([0-9;:?]*)([@-~])`)

// parseScreen turns capture-pane -e output into rows of cells.
func parseScreen(screen string, cols, rows int) [][]cell {
	grid := make([][]cell, rows)
	var st cellStyle
	lines := strings.Split(strings.TrimSuffix(screen, "\n"), "\n")
	for y := 0; y < rows; y++ {
		grid[y] = make([]cell, cols)
		for x := range grid[y] {
			grid[y][x] = cell{' ', cellStyle{}}
		}
		if y >= len(lines) {
			continue
		}
		line, x := lines[y], 0
		for len(line) > 0 {
			if line[0] == 0x1b {
				if m := escSeq.FindStringSubmatch(line); m != nil {
					if m[2] == "m" {
						applySGR(&st, m[1])
					}
					line = line[len(m[0]):]
					continue
				}
				line = line[1:]
				continue
			}
			r, size := utf8.DecodeRuneInString(line)
			line = line[size:]
			if x < cols {
				grid[y][x] = cell{r, st}
			}
			x++
		}
	}
	return grid
}

// mvgQuote quotes text for an MVG text primitive.
func mvgQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// renderTerminal draws the screen with ImageMagick: one -draw per row
// (backgrounds, then runs of text of one style).
func renderTerminal(screen string, cols, rows int, path string) error {
	grid := parseScreen(screen, cols, rows)
	w, h := cols*cellW+2*termPad, rows*cellH+2*termPad
	args := []string{"-size", fmt.Sprintf("%dx%d", w, h), "xc:" + termBg, "-pointsize", strconv.Itoa(termPoint)}
	for y, row := range grid {
		var mvg strings.Builder
		top := termPad + y*cellH
		for x := 0; x < cols; {
			st := row[x].st
			end := x
			var text strings.Builder
			for end < cols && row[end].st == st {
				text.WriteRune(row[end].r)
				end++
			}
			fg, bg := st.fg, st.bg
			if fg == "" {
				fg = termFg
			}
			if bg == "" {
				bg = termBg
			}
			if st.reverse {
				fg, bg = bg, fg
			}
			left, right := termPad+x*cellW, termPad+end*cellW-1
			if bg != termBg {
				fmt.Fprintf(&mvg, "fill '%s' rectangle %d,%d %d,%d\n", bg, left, top, right, top+cellH-1)
			}
			if str := text.String(); strings.TrimSpace(str) != "" {
				font := fontRegular
				if st.bold {
					font = fontBold
				}
				fmt.Fprintf(&mvg, "font '%s' fill '%s' text %d,%d %s\n", font, fg, left, top+cellAscent, mvgQuote(str))
			}
			if st.underln {
				fmt.Fprintf(&mvg, "fill '%s' rectangle %d,%d %d,%d\n", fg, left, top+cellH-2, right, top+cellH-2)
			}
			x = end
		}
		if mvg.Len() > 0 {
			args = append(args, "-draw", mvg.String())
		}
	}
	// No time chunks: the same picture gives the same file.
	args = append(args, "-define", "png:exclude-chunks=date,time", "-strip", path)
	out, err := exec.Command("convert", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("convert: %v: %s", err, out)
	}
	return nil
}
