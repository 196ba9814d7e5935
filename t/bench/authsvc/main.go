// authsvc: the architecture ngx_rtmp_pgauth replaces, for the benchmarks.
//
// nginx-rtmp's notify module asks this HTTP service about every publish
// (on_publish) and tells it when the publish ends (on_publish_done); the
// service looks the stream key up in PostgreSQL with the same database
// functions the module calls (src/pgauth.sql):
//
//	on_publish      http://127.0.0.1:8080/on_publish;
//	on_publish_done http://127.0.0.1:8080/on_publish_done;
//
// Replies to call=publish: 302 with "Location: <public name>" (nginx-rtmp
// renames the stream locally: a Location not starting with rtmp://), or
// with -redirect rtmp://HOST:PORT/APP/, "Location: rtmp://HOST:PORT/APP/
// <public name>" (nginx-rtmp pushes the stream there under that name),
// 403 for a refused key (no row, or SQLSTATE PA001 with -duplicate
// refuse), 500 when the database fails or does not answer within
// -timeout.  nginx-rtmp refuses the publish on any reply but 2xx and 3xx.
//
// Standard library and github.com/lib/pq only; built in GOPATH mode by
// build.sh in this directory.
package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"
)

const (
	authorizeSQL = `SELECT stream_name, session_id, valid_for
                    FROM pgauth.authorize($1, $2, $3, $4, $5)`

	// the auth_request way of private HLS: the same viewer decision
	viewerSQL = `SELECT session_id FROM pgauth.authorize_viewer($1, $2, $3, $4, 'hls')`
	doneSQL   = `SELECT pgauth.publish_done($1, $2)`
	// -plain: the usual small service, a key looked up and nothing
	// recorded (no session, no duplicate check, nothing at the end)
	plainSQL = `SELECT stream_name, 0::bigint, NULL::float8
                FROM pgauth.stream_keys
                WHERE key_digest = $1 AND app = $2 AND enabled
                  AND (expires_at IS NULL OR expires_at > now())`

	// pgauth.authorize() raises this when the name is live and
	// duplicate is 'refuse'
	sqlstateBusy = "PA001"

	// nginx-rtmp's NGX_RTMP_MAX_NAME + NGX_RTMP_MAX_ARGS and its session
	// fields fit in far less
	maxBody = 64 << 10

	// a done call that came before its publish's reply is kept this long
	tombstoneTTL = 2 * time.Minute
)

// One publish as nginx-rtmp names it in both calls: clientid is nginx's
// connection number (a counter shared by the workers of one nginx), name
// is the name the client published (the key: on_publish_done sends the
// name from before the rename).  peer is the nginx host, for several
// nginx servers sharing one service.
type pubKey struct {
	peer, app, clientid, name string
}

type pub struct {
	sid  int64
	gone bool // publish_done came first: end the session when it is known
	at   time.Time
}

type service struct {
	db        *sql.DB
	authorize *sql.Stmt
	done      *sql.Stmt
	viewer    *sql.Stmt
	duplicate string
	redirect  string
	plain     bool
	timeout   time.Duration
	log       *log.Logger // nil: no logging

	mu   sync.Mutex
	pubs map[pubKey]pub
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	dsn := flag.String("dsn",
		"host=127.0.0.1 port=5432 dbname=pgauth user=pgauth_nginx sslmode=disable connect_timeout=3",
		"lib/pq connection string")
	pool := flag.Int("pool", 8, "database connections (max open and max idle)")
	duplicate := flag.String("duplicate", "takeover",
		"a key whose stream is live: takeover or refuse")
	redirect := flag.String("redirect", "",
		"prefix of the Location: empty, a local rename (HLS and DASH keep "+
			"the key's name); rtmp://127.0.0.1:1935/hls/ pushes the stream "+
			"to application hls under the public name")
	timeout := flag.Duration("timeout", 3*time.Second,
		"deadline of every database call")
	verbose := flag.Bool("v", false, "log one line per decision to stderr")
	plain := flag.Bool("plain", false,
		"a plain key lookup, no session recorded (the usual small service)")
	flag.Parse()

	if *duplicate != "takeover" && *duplicate != "refuse" {
		fatalf("-duplicate must be takeover or refuse")
	}
	if *pool < 1 {
		fatalf("-pool must be at least 1")
	}

	db, err := sql.Open("postgres", *dsn)
	if err != nil {
		fatalf("%v", err)
	}
	db.SetMaxOpenConns(*pool)
	db.SetMaxIdleConns(*pool)

	s := &service{
		db:        db,
		duplicate: *duplicate,
		redirect:  *redirect,
		timeout:   *timeout,
		plain:     *plain,
		pubs:      make(map[pubKey]pub),
	}
	if *verbose {
		s.log = log.New(os.Stderr, "authsvc: ", log.LstdFlags|log.Lmicroseconds)
	}

	// prepared once; database/sql prepares them again on every new
	// connection of the pool by itself
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if s.plain {
		s.authorize, err = db.PrepareContext(ctx, plainSQL)
	} else {
		s.authorize, err = db.PrepareContext(ctx, authorizeSQL)
	}
	if err == nil {
		s.done, err = db.PrepareContext(ctx, doneSQL)
	}
	if err == nil {
		// the schema may predate viewers: then /viewer answers 500
		s.viewer, _ = db.PrepareContext(ctx, viewerSQL)
	}
	cancel()
	if err != nil {
		fatalf("prepare: %v", err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatalf("%v", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", s.serve) // dispatched on the call field
	mux.HandleFunc("/viewer", s.viewerCheck)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10*time.Second + *timeout,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if *verbose {
		srv.ErrorLog = s.log
	}

	go s.sweep()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	s.logf("listening on %s, pool %d, duplicate %s", ln.Addr(), *pool,
		*duplicate)

	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fatalf("%v", err)
	}
	db.Close()
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "authsvc: "+format+"\n", args...)
	os.Exit(1)
}

func (s *service) logf(format string, args ...interface{}) {
	if s.log != nil {
		s.log.Printf(format, args...)
	}
}

// The body nginx-rtmp sends, for call=publish:
//
//	app=A&flashver=F&swfurl=S&tcurl=T&pageurl=P&addr=IP&clientid=N
//	&call=publish&name=KEY&type=live[&ARGS]
//
// and for call=publish_done the same session fields, then
// &call=publish_done[&name=KEY][&ARGS].  Every value is escaped except
// ARGS, the raw query string the client appended to the stream name
// ("KEY?a=b"): its fields come last, so the first value of a field is
// always nginx's own.
func (s *service) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	raw := string(body)
	// the raw ARGS may hold anything: whatever does not parse is skipped
	form, _ := url.ParseQuery(raw)

	switch form.Get("call") {
	case "publish":
		s.publish(w, r, raw, form)
	case "publish_done":
		s.publishDone(w, r, form)
	default:
		http.Error(w, "unknown call", http.StatusBadRequest)
	}
}

func peerOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// The client's publish arguments, raw, as the module passes them: what
// follows "&call=publish&name=...&type=...&".
func publishArgs(raw string) string {
	i := strings.Index(raw, "&call=publish&name=")
	if i < 0 {
		return ""
	}
	rest := raw[i+len("&call=publish&name="):]
	j := strings.Index(rest, "&type=")
	if j < 0 {
		return ""
	}
	rest = rest[j+len("&type="):]
	k := strings.IndexByte(rest, '&')
	if k < 0 {
		return ""
	}
	return rest[k+1:]
}

type decision struct {
	name     string
	sid      int64
	validFor sql.NullFloat64
	found    bool
	err      error
}

func (s *service) publish(w http.ResponseWriter, r *http.Request, raw string,
	form url.Values) {

	start := time.Now()
	key := form.Get("name")
	app := form.Get("app")
	addr := form.Get("addr")
	args := publishArgs(raw)
	pk := pubKey{peerOf(r), app, form.Get("clientid"), key}

	digest := sha256.Sum256([]byte(key))
	fp := hex.EncodeToString(digest[:4])

	if key == "" {
		s.logf("refused app=%q addr=%q reason=\"empty stream key\"", app, addr)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if !utf8.ValidString(args) || !utf8.ValidString(app) {
		// PostgreSQL would refuse the text parameter anyway
		s.logf("refused app=%q addr=%q fp=%s reason=\"not UTF-8\"",
			app, addr, fp)
		w.WriteHeader(http.StatusForbidden)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()

	// lib/pq answers a context deadline by sending a cancel request and
	// waiting for the server: a server that does not answer at all would
	// hold the handler past the deadline.  The query runs on its own; a
	// late row is a session nobody will end: it is ended at once.
	ch := make(chan decision, 1)
	go func() {
		var d decision
		var row *sql.Row
		if s.plain {
			row = s.authorize.QueryRowContext(ctx, digest[:], app)
		} else {
			row = s.authorize.QueryRowContext(ctx, digest[:], app, addr,
				args, s.duplicate)
		}
		d.err = row.Scan(&d.name, &d.sid, &d.validFor)
		if d.err == sql.ErrNoRows {
			d.err = nil
		} else if d.err == nil {
			d.found = true
		}
		ch <- d
	}()

	var d decision
	select {
	case d = <-ch:
	case <-ctx.Done():
		go func() {
			if late := <-ch; late.found {
				s.logf("late reply for app=%q addr=%q fp=%s, ending session %d",
					app, addr, fp, late.sid)
				s.end(late.sid, "client gone")
			}
		}()
		d.err = ctx.Err()
	}
	ms := float64(time.Since(start).Microseconds()) / 1000

	if d.err != nil {
		var pqe *pq.Error
		if errors.As(d.err, &pqe) && pqe.Code == sqlstateBusy {
			s.logf("refused app=%q addr=%q fp=%s reason=\"already live\" ms=%.1f",
				app, addr, fp, ms)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		s.logf("refused app=%q addr=%q fp=%s reason=\"database: %v\" ms=%.1f",
			app, addr, fp, d.err, ms)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}

	if !d.found {
		s.logf("refused app=%q addr=%q fp=%s reason=\"rejected\" ms=%.1f",
			app, addr, fp, ms)
		w.WriteHeader(http.StatusForbidden)
		return
	}

	// remembered for on_publish_done, which names the publish the same way
	s.mu.Lock()
	old, had := s.pubs[pk]
	if had && old.gone {
		delete(s.pubs, pk)
	} else {
		s.pubs[pk] = pub{sid: d.sid, at: time.Now()}
	}
	s.mu.Unlock()

	if had && old.gone {
		// nginx-rtmp sent publish_done while we were deciding: the client
		// left during the call
		s.logf("client gone app=%q addr=%q fp=%s, ending session %d",
			app, addr, fp, d.sid)
		s.end(d.sid, "client gone")
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if had {
		// the same connection number and key without a done call: an
		// nginx restarted; that session is over
		s.end(old.sid, "unpublish")
	}

	validFor := "-"
	if d.validFor.Valid {
		validFor = fmt.Sprintf("%.0fs", d.validFor.Float64)
	}
	s.logf("allowed app=%q name=%q addr=%q fp=%s session=%d valid_for=%s ms=%.1f",
		app, d.name, addr, fp, d.sid, validFor, ms)

	// a Location that is not rtmp://...: nginx-rtmp publishes under
	// this name instead of the key, for the modules after its notify
	// module in the publish chain (live, record, relay; not hls, dash);
	// rtmp://...: it pushes the stream there
	w.Header().Set("Location", s.redirect+d.name)
	w.WriteHeader(http.StatusFound)
}

func (s *service) publishDone(w http.ResponseWriter, r *http.Request,
	form url.Values) {

	pk := pubKey{peerOf(r), form.Get("app"), form.Get("clientid"),
		form.Get("name")}

	s.mu.Lock()
	p, ok := s.pubs[pk]
	if ok && !p.gone {
		delete(s.pubs, pk)
	} else if !ok {
		// before the publish's own reply (the client left during the
		// call), or after a refusal nginx did not hear
		s.pubs[pk] = pub{gone: true, at: time.Now()}
	}
	s.mu.Unlock()

	if ok && !p.gone && p.sid == 0 {
		// -plain: nothing was recorded
		w.WriteHeader(http.StatusOK)
		return
	}

	if !ok || p.gone {
		s.logf("done app=%q addr=%q clientid=%s: no session (yet)",
			pk.app, form.Get("addr"), pk.clientid)
		w.WriteHeader(http.StatusOK)
		return
	}

	if err := s.end(p.sid, "unpublish"); err != nil {
		s.logf("done session=%d failed: %v", p.sid, err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.logf("ended session=%d app=%q addr=%q reason=unpublish",
		p.sid, pk.app, form.Get("addr"))
	w.WriteHeader(http.StatusOK)
}

func (s *service) end(sid int64, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	_, err := s.done.ExecContext(ctx, sid, reason)
	return err
}

// Drops done calls whose publish never got a session.
func (s *service) sweep() {
	for range time.Tick(tombstoneTTL / 2) {
		now := time.Now()
		s.mu.Lock()
		for k, p := range s.pubs {
			if p.gone && now.Sub(p.at) > tombstoneTTL {
				delete(s.pubs, k)
			}
		}
		s.mu.Unlock()
	}
}

// nginx's auth_request to /viewer, with the viewer's request in
// X-Original-URI ("/hls/NAME.m3u8?token=T", "/hls/NAME-N.ts?token=T") and
// its address in X-Real-IP: 200 when the token lets it watch NAME in
// application live, else 403.  Every request is a query: this is the
// usual design, without a session of its own.
func (s *service) viewerCheck(w http.ResponseWriter, r *http.Request) {
	if s.viewer == nil {
		http.Error(w, "no viewer schema", http.StatusInternalServerError)
		return
	}
	u, err := url.Parse(r.Header.Get("X-Original-URI"))
	if err != nil {
		http.Error(w, "", http.StatusForbidden)
		return
	}
	token := u.Query().Get("token")
	base := u.Path[strings.LastIndexByte(u.Path, '/')+1:]
	name := strings.TrimSuffix(base, ".m3u8")
	if name == base {
		if i := strings.LastIndexByte(base, '-'); i > 0 {
			name = base[:i]
		}
	}
	if token == "" || name == "" {
		http.Error(w, "", http.StatusForbidden)
		return
	}
	digest := sha256.Sum256([]byte(token))
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	var sid int64
	err = s.viewer.QueryRowContext(ctx, digest[:], "live", name,
		r.Header.Get("X-Real-IP")).Scan(&sid)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, sql.ErrNoRows):
		http.Error(w, "", http.StatusForbidden)
	default:
		http.Error(w, "", http.StatusServiceUnavailable)
	}
}
