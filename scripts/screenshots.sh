#!/usr/bin/env bash
# Regenerates the pictures of the client guide (docs/clients.md):
# docs/img/irssi.png, docs/img/weechat.png and docs/img/hexchat.png, and
# the web client's docs/img/web-{desktop,phone}-{light,dark}.png.
#
# It runs the e2e test TestScreenshots (e2e/screenshots_test.go), which
# builds the server, starts it on a temporary copy of config.toml and
# users.txt on a free 127.0.0.1 port, logs alice in with irssi, bob with
# WeeChat (both in tmux) and carol with HexChat (under Xvfb), has them talk
# in #lobby, exchange private messages and ask WHOELSE, then saves what
# each client shows. irssi and WeeChat: the tmux screen (capture-pane -e),
# drawn with ImageMagick in DejaVu Sans Mono; HexChat: import -window root.
# Everything it starts is stopped when it ends.
#
# Then TestWebScreenshots (e2e/web_screenshots_test.go): the server with a
# [web] listener, alice logged in from the built-in web client in headless
# Chromium while bob, carol and dave talk in #lobby and bob writes to her;
# Chromium's own screenshots at 1280x800 and, emulating a phone, 390x844,
# each with prefers-color-scheme light and dark.
#
# Needs: go, irssi, weechat, tmux, hexchat, Xvfb, xdotool, dbus-daemon,
# ImageMagick, fonts-dejavu-core and chromium (.ci/run installs them all).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=""
for t in "${GO:-go}" irssi weechat tmux hexchat Xvfb xdotool dbus-daemon convert import chromium; do
  command -v "$t" >/dev/null || missing="$missing $t"
done
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] || missing="$missing fonts-dejavu-core"
if [ -n "$missing" ]; then
  echo "screenshots: not installed:$missing (see .ci/run for the packages)" >&2
  exit 1
fi

mkdir -p docs/img
E2E_REQUIRE=1 E2E_SCREENSHOTS="$PWD/docs/img" "${GO:-go}" test -count=1 -run '^(TestScreenshots|TestWebScreenshots)$' -v ./e2e/
ls -l docs/img/irssi.png docs/img/weechat.png docs/img/hexchat.png \
  docs/img/web-desktop-light.png docs/img/web-desktop-dark.png docs/img/web-phone-light.png docs/img/web-phone-dark.png
