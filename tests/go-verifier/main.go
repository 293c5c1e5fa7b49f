// Command go-verifier checks the registry's transparency log with code that is not the
// project's own: golang.org/x/mod's sumdb/note (signed notes) and sumdb/tlog (RFC 9162
// Merkle proofs, the same tree as the Go checksum database), plus the standard library.
//
// It fetches the current checkpoint, verifies the log's signature and, optionally, witness
// cosignatures (C2SP tlog-cosignature), proves each given event is included, and proves the
// current tree extends an earlier checkpoint. Each passed check prints one "ok ..." line; the
// first failure prints "FAIL: <reason>" to stderr and exits 1.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

// check fails with "what: err" when err is not nil.
func check(err error, what string, args ...interface{}) {
	if err != nil {
		fail("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// listFlag collects a flag given several times and/or as a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

var (
	baseURL = flag.String("url", "", "base URL of the registry server, e.g. http://127.0.0.1:1234")
	token   = flag.String("token", "", "bearer token for the auditor endpoints")
	logKey  = flag.String("log-key", "", "the log's note verifier key (name+hexid+base64, Ed25519)")
	oldPath = flag.String("old", "", "file holding an earlier signed checkpoint to check consistency from")
	save    = flag.String("save", "", "write the current checkpoint note to this file")
	events  listFlag
	witness listFlag
	client  = &http.Client{Timeout: 30 * time.Second}
)

// get fetches a URL (with the bearer token when auth is set) and returns the body of a 200.
func get(path string, auth bool) []byte {
	req, err := http.NewRequest("GET", strings.TrimRight(*baseURL, "/")+path, nil)
	check(err, "GET %s", path)
	if auth {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := client.Do(req)
	check(err, "GET %s", path)
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	check(err, "GET %s: reading body", path)
	if resp.StatusCode != http.StatusOK {
		fail("GET %s: status %d: %.200s", path, resp.StatusCode, body)
	}
	return body
}

// checkpoint is a C2SP tlog-checkpoint whose log signature has been verified.
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
	note   *note.Note
}

// openCheckpoint verifies the note's signature by the log key (note.Open fails unless a known
// key, here only the log's, signed it; other signatures land in n.UnverifiedSigs) and parses
// the body: origin, decimal tree size, base64 root hash, then optional extension lines.
func openCheckpoint(msg []byte, verifiers note.Verifiers) (*checkpoint, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return nil, fmt.Errorf("log signature: %v", err)
	}
	lines := strings.Split(n.Text, "\n") // n.Text ends with "\n", so the last element is ""
	if len(lines) < 4 || lines[0] == "" {
		return nil, fmt.Errorf("checkpoint body has fewer than 3 lines or an empty origin")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("bad tree size line %q", lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return nil, fmt.Errorf("bad root hash line %q", lines[2])
	}
	return &checkpoint{origin: lines[0], size: size, root: root, note: n}, nil
}

// checkCosignature checks a C2SP tlog-cosignature/v1 by the witness whose vkey is given:
// vkey = name+hexid+base64(0x04 || Ed25519 public key), id = SHA-256(name || "\n" || 0x04 ||
// key)[:4]; signature = id(4) || timestamp(8, big-endian seconds) || Ed25519 signature over
// "cosignature/v1\ntime <timestamp>\n" || checkpoint body.
func checkCosignature(vkey string, n *note.Note) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		fail("witness key %q: want name+hexid+base64", vkey)
	}
	name := parts[0]
	id, err1 := strconv.ParseUint(parts[1], 16, 32)
	key, err2 := base64.StdEncoding.DecodeString(parts[2])
	if err1 != nil || len(parts[1]) != 8 || err2 != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != 0x04 {
		fail("witness key %q: malformed (want 8 hex digits and 0x04 || 32-byte key)", vkey)
	}
	sum := sha256.Sum256(append([]byte(name+"\n"), key...))
	if uint32(id) != binary.BigEndian.Uint32(sum[:4]) {
		fail("witness key %q: key id does not match the key", vkey)
	}
	for _, s := range n.UnverifiedSigs {
		if s.Name != name || s.Hash != uint32(id) {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || len(sig) != 4+8+ed25519.SignatureSize {
			fail("cosignature by %s: malformed", name)
		}
		ts := binary.BigEndian.Uint64(sig[4:12])
		msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, n.Text)
		if ed25519.Verify(ed25519.PublicKey(key[1:]), []byte(msg), sig[12:]) {
			fmt.Printf("ok cosignature %s time %d\n", name, ts)
			return
		}
	}
	fail("no valid cosignature by witness %s+%08x", name, id)
}

// canonical returns the RFC 8785 (JCS) form of a flat JSON object of strings and integers,
// the shape of a log entry: members sorted by name, no whitespace, integers
// (within ±2^53) in plain decimal, strings escaped as ECMAScript's JSON.stringify does.
func canonical(obj map[string]interface{}) ([]byte, error) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	// Go orders strings by UTF-8 bytes, which equals UTF-16 order except between characters
	// above U+FFFF and U+E000..U+FFFF; entry member names are ASCII, so sort.Strings suffices.
	sort.Strings(keys)
	buf := bytes.NewBufferString("{")
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		quote(buf, k)
		buf.WriteByte(':')
		switch v := obj[k].(type) {
		case string:
			quote(buf, v)
		case json.Number:
			n, err := strconv.ParseInt(v.String(), 10, 64)
			if err != nil || n > 1<<53 || n < -(1<<53) {
				return nil, fmt.Errorf("member %q: %s is not a safe integer", k, v)
			}
			buf.WriteString(strconv.FormatInt(n, 10))
		default:
			return nil, fmt.Errorf("member %q: only strings and integers are expected, got %T", k, v)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// RFC 8785 escapes: these short forms, other controls as \u00xx, all else literal UTF-8
// (Go's encoding/json differs: it writes \u0008, \u000c and escapes U+2028/U+2029).
var shortEscapes = map[rune]string{'"': `\"`, '\\': `\\`, '\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`}

func quote(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for _, r := range s { // invalid UTF-8 becomes U+FFFD, so it cannot compare equal
		if e, ok := shortEscapes[r]; ok {
			buf.WriteString(e)
		} else if r < 0x20 {
			fmt.Fprintf(buf, `\u%04x`, r)
		} else {
			buf.WriteRune(r)
		}
	}
	buf.WriteByte('"')
}

// checkInclusion proves that the entry of event id is leaf leaf_index of the current tree.
func checkInclusion(id string, cur *checkpoint) {
	q := url.Values{"event_id": {id}, "tree_size": {strconv.FormatInt(cur.size, 10)}}
	var r struct {
		EventID   string      `json:"event_id"`
		LeafIndex int64       `json:"leaf_index"`
		TreeSize  int64       `json:"tree_size"`
		Entry     []byte      `json:"entry"` // base64 in the JSON
		Proof     []tlog.Hash `json:"proof"` // tlog.Hash decodes base64 of exactly 32 bytes
	}
	check(json.Unmarshal(get("/api/v1/log/inclusion?"+q.Encode(), true), &r), "inclusion %s: bad JSON", id)
	if r.EventID != id || r.TreeSize != cur.size {
		fail("inclusion %s: answer is for event %q, tree size %d (asked %d)", id, r.EventID, r.TreeSize, cur.size)
	}
	// The entry must be a JSON object naming this event, and already in canonical form.
	dec := json.NewDecoder(bytes.NewReader(r.Entry))
	dec.UseNumber()
	var obj map[string]interface{}
	check(dec.Decode(&obj), "inclusion %s: entry is not a JSON object", id)
	if got, _ := obj["event_id"].(string); got != id {
		fail("inclusion %s: entry's event_id is %q", id, obj["event_id"])
	}
	canon, err := canonical(obj)
	check(err, "inclusion %s: entry", id)
	if !bytes.Equal(canon, r.Entry) {
		fail("inclusion %s: entry is not RFC 8785 canonical JSON:\n got  %s\n want %s", id, r.Entry, canon)
	}
	// The leaf hash is SHA-256(0x00 || entry); the proof must lead from it to the signed root.
	err = tlog.CheckRecord(r.Proof, cur.size, cur.root, r.LeafIndex, tlog.RecordHash(r.Entry))
	check(err, "inclusion %s at %d in tree of %d", id, r.LeafIndex, cur.size)
	fmt.Printf("ok inclusion %s at %d\n", id, r.LeafIndex)
}

// checkConsistency proves that the tree of the old checkpoint is a prefix of the current one.
func checkConsistency(old, cur *checkpoint) {
	if old.origin != cur.origin {
		fail("consistency: old checkpoint is for log %q, current for %q", old.origin, cur.origin)
	}
	if old.size > cur.size {
		fail("consistency: old tree size %d is larger than current %d (log rolled back?)", old.size, cur.size)
	}
	if old.size == 0 { // the empty tree is a prefix of every tree; tlog has no proof for it
		fmt.Printf("ok consistency 0 -> %d\n", cur.size)
		return
	}
	var r struct {
		From  int64       `json:"from"`
		To    int64       `json:"to"`
		Proof []tlog.Hash `json:"proof"`
	}
	path := fmt.Sprintf("/api/v1/log/consistency?from=%d&to=%d", old.size, cur.size)
	check(json.Unmarshal(get(path, true), &r), "consistency: bad JSON")
	if r.From != old.size || r.To != cur.size {
		fail("consistency: answer is for %d -> %d, asked %d -> %d", r.From, r.To, old.size, cur.size)
	}
	check(tlog.CheckTree(r.Proof, cur.size, cur.root, old.size, old.root), "consistency %d -> %d", old.size, cur.size)
	fmt.Printf("ok consistency %d -> %d\n", old.size, cur.size)
}

func main() {
	flag.Var(&events, "events", "comma-separated event ids to prove included (repeatable)")
	flag.Var(&witness, "witness-key", "witness cosignature verifier key (repeatable or comma-separated)")
	flag.Parse()
	if *baseURL == "" || *logKey == "" {
		fail("-url and -log-key are required")
	}
	v, err := note.NewVerifier(*logKey)
	check(err, "-log-key")
	verifiers := note.VerifierList(v) // only the log's key: witness lines stay unverified

	raw := get("/log/checkpoint", false)
	cur, err := openCheckpoint(raw, verifiers)
	check(err, "checkpoint")
	fmt.Printf("ok checkpoint %s signed by %s size %d\n", cur.origin, v.Name(), cur.size)

	for _, w := range witness {
		checkCosignature(w, cur.note)
	}
	for _, id := range events {
		checkInclusion(id, cur)
	}
	if *oldPath != "" {
		msg, err := os.ReadFile(*oldPath)
		check(err, "-old")
		old, err := openCheckpoint(msg, verifiers)
		check(err, "old checkpoint %s", *oldPath)
		checkConsistency(old, cur)
	}
	if *save != "" {
		check(os.WriteFile(*save, raw, 0o644), "-save")
	}
}
