// Offline build against Debian's golang-golang-x-mod-dev (x/mod 0.7.0, same sumdb/note and
// sumdb/tlog API), for machines that cannot reach the Go module proxy:
//   apt-get install -y golang-golang-x-mod-dev && go build -modfile=go.debian.mod .
module registry.local/go-verifier

go 1.19

require golang.org/x/mod v0.12.0

replace golang.org/x/mod => /usr/share/gocode/src/golang.org/x/mod
