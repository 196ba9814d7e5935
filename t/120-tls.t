#!/usr/bin/perl
# TLS to PostgreSQL.  With sslmode=verify-full the pool and the LISTEN
# connection are encrypted and publish, deny and live control work through
# them; a server certificate from another CA, or for another host name,
# refuses the publish as unavailable with libpq's reason in the error log
# and nothing falls back to plaintext (checked while the server would still
# accept plaintext from the nginx role).  Then pg_hba requires TLS of the
# nginx role: verify-full (by IP and by DNS name), require and prefer all
# publish, encrypted.  Replies of many sizes (up to 1 MB, over many TLS
# records) are read without stalling until the timeout: the socket is
# registered level-triggered, and decrypted bytes OpenSSL holds do not
# show on it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use DBI;
use Pgauth;

need_tools('psql', 'openssl', $RTMPC);

my $timeout_ms = 2000;

# --- certificates ---------------------------------------------------------

my $tls = tmpdir();
my $pguser = $> == 0 ? 'postgres' : undef;

sub openssl {
    my (@args) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$tls/openssl.log";
        open STDERR, '>&', \*STDOUT;
        exec 'openssl', @args;
        exit 127;
    }
    waitpid $pid, 0;
    die "openssl @args failed: " . slurp("$tls/openssl.log") if $?;
}

my @ec = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
          '-nodes');

sub make_ca {
    my ($name, $cn) = @_;
    openssl('req', '-x509', @ec, '-keyout', "$tls/$name.key",
            '-out', "$tls/$name.crt", '-days', '2', '-subj', "/CN=$cn");
}

# a server certificate signed by $ca for the subjectAltName $san
sub make_server_cert {
    my ($name, $ca, $san) = @_;
    spew("$tls/$name.ext", "subjectAltName=$san\n"
                           . "basicConstraints=CA:FALSE\n"
                           . "keyUsage=critical,digitalSignature,keyEncipherment\n"
                           . "extendedKeyUsage=serverAuth\n");
    openssl('req', '-new', @ec, '-keyout', "$tls/$name.key",
            '-out', "$tls/$name.csr", '-subj', '/CN=pgauth test server');
    openssl('x509', '-req', '-in', "$tls/$name.csr", '-CA', "$tls/$ca.crt",
            '-CAkey', "$tls/$ca.key", '-set_serial', int(rand(1e9)) + 1,
            '-days', '2', '-out', "$tls/$name.crt",
            '-extfile', "$tls/$name.ext");
}

make_ca('ca', 'pgauth test CA');
make_ca('other-ca', 'pgauth unrelated CA');
make_server_cert('server', 'ca', 'IP:127.0.0.1,DNS:localhost');

# what the server reads: its own, the key not readable by anyone else
for my $f ('server.crt', 'server.key') {
    if ($pguser) {
        system('chown', $pguser, "$tls/$f") == 0 or die "chown $f";
    }
}
chmod 0600, "$tls/server.key";
chmod 0644, "$tls/server.crt", "$tls/ca.crt", "$tls/other-ca.crt";

ok(system("openssl verify -CAfile $tls/ca.crt $tls/server.crt"
          . " >/dev/null 2>&1") == 0, 'the server certificate is of our CA');
ok(system("openssl verify -CAfile $tls/other-ca.crt $tls/server.crt"
          . " >/dev/null 2>&1") != 0, '... and not of the other one');

# --- PostgreSQL with TLS ---------------------------------------------------

my $pg = Pgauth::Pg->new(conf => [
    "ssl = on",
    "ssl_cert_file = '$tls/server.crt'",
    "ssl_key_file = '$tls/server.key'",
    "log_connections = on",
]);
my $port = $pg->{port};

is($pg->psql("SHOW ssl"), 'on', 'PostgreSQL runs with ssl = on');

# psql as the nginx role with the given connection options; returns
# (exit code, output)
sub psql_nginx_role {
    my ($opts) = @_;
    my $out = `psql -X -q -A -t -d "host=127.0.0.1 port=$port dbname=pgauth user=pgauth_nginx application_name=tls-probe $opts" -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1`;
    $out =~ s/\s+\z//;
    return ($? >> 8, $out);
}

# nginx's backends (pool and LISTEN), and how many of them use TLS
sub nginx_tls {
    my $r = $pg->psql("SELECT count(*), count(*) FILTER (WHERE s.ssl)"
                      . " FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
                      . " WHERE a.application_name LIKE 'nginx-rtmp-pgauth%'");
    return split /\|/, $r;
}

# connections the server let in as the nginx role without TLS (but not
# our own plaintext probe)
sub plaintext_logins {
    return scalar grep { /connection authorized: user=pgauth_nginx/
                         && !/SSL enabled/ && !/application_name=tls-probe/ }
                  split /\n/, slurp($pg->{log});
}

sub conf_with {
    my ($dsn, $app) = @_;
    my $conf = Pgauth::Nginx::default_conf(
        app => "pgauth_timeout ${timeout_ms}ms;\n" . ($app || ''));
    $conf =~ s/^(\s*pgauth_dsn) "%%DSN%%";$/$1 "$dsn";/m or die 'no DSN line';
    return $conf;
}

my $base = "port=$port dbname=pgauth user=pgauth_nginx";
my $verify = "host=127.0.0.1 $base sslmode=verify-full sslrootcert=$tls/ca.crt";

my $key = $pg->create_key('alice');

my @nginx;

sub nginx {
    my ($what, $dsn, $app) = @_;
    my $ng = Pgauth::Nginx->new(pg => $pg, conf => conf_with($dsn, $app));
    $ng->{what} = $what;
    push @nginx, $ng;
    return $ng;
}

# SIGTERM, then on as soon as the workers (and their PostgreSQL sessions)
# are gone: the master lingers a second and a half after them, it is
# waited for, and its error log checked, at the end
sub retire {
    my ($ng) = @_;
    my @workers = $ng->worker_pids;
    $ng->signal('TERM');
    wait_for(10, sub { !grep { -e "/proc/$_" } @workers })
        or die "nginx workers @workers do not exit";
    wait_for(5, sub { (nginx_tls())[0] == 0 })
        or die "the PostgreSQL sessions of nginx outlive its workers";
}

# --- while plaintext would still be let in: no fallback --------------------

my ($rc, $out) = psql_nginx_role('sslmode=disable');
is("$rc $out", '0 f',
   'pg_hba still lets the nginx role in without TLS (so a fallback would show)');

for my $case (
    [ 'certificate of another CA',
      "host=127.0.0.1 $base sslmode=verify-full sslrootcert=$tls/other-ca.crt",
      qr/SSL error: certificate verify failed/,
      qr/could not accept SSL connection: tlsv1 alert unknown ca/ ],
    [ 'certificate for another host name',
      "host=wrong.example hostaddr=127.0.0.1 $base sslmode=verify-full"
      . " sslrootcert=$tls/ca.crt",
      qr/server certificate for "(127\.0\.0\.1|localhost)"(?: \(and \d+ other names?\))? does not match host name "wrong\.example"/, ],
) {
    my ($what, $dsn, $reason, $server_saw) = @$case;
    my $ng = nginx($what, $dsn);
    my $r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
    is($r->{status}{code}, 'NetStream.Failed',
       "$what: the publish is refused as unavailable")
        or diag join "\n", @{$r->{out}};
    is($r->{status}{desc}, 'Authorization unavailable, try again later',
       "$what: ... with the unavailable description");
    cmp_ok($r->{status}{ms}, '<=', $timeout_ms + 500,
           "$what: ... within pgauth_timeout");
    like($ng->error_log,
         qr/pgauth: connection #\d+: connect failed: .*$reason/,
         "$what: the error log says why");
    ok(slurp($pg->{log}) =~ $server_saw,
       "$what: PostgreSQL saw the handshake fail") if $server_saw;
    unlike($ng->error_log, qr/pgauth: (listening on channel|allowed) /,
           "$what: neither the LISTEN connection nor the pool got through");
    my ($n) = nginx_tls();
    is($n, 0, "$what: no backend of nginx at all (no plaintext fallback)");
    is(plaintext_logins(), 0,
       "$what: the server let no plaintext login of the nginx role in");
    retire($ng);
}

# sslmode=prefer while plaintext is allowed: TLS is chosen
{
    my $ng = nginx('sslmode=prefer, plaintext allowed',
                   "host=127.0.0.1 $base sslmode=prefer");
    my $r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
    is($r->{status}{code}, 'NetStream.Publish.Start',
       'sslmode=prefer: publishes') or diag join "\n", @{$r->{out}};
    ok(wait_for(5, sub { (nginx_tls())[0] >= 2 }),
       'sslmode=prefer: pool and LISTEN connections are up');
    my ($n, $ssl) = nginx_tls();
    ok($n && $ssl == $n, "sslmode=prefer: all $n of nginx's backends use TLS");
    is(plaintext_logins(), 0, 'sslmode=prefer: no plaintext login');
    retire($ng);
}

# --- pg_hba: TLS required of the nginx role over TCP -----------------------

{
    my $hba = "$pg->{data}/pg_hba.conf";
    my $text = slurp($hba);
    # first match wins: in front of initdb's "host all all ... trust"
    open my $fh, '>', $hba or die "$hba: $!";   # keeps the owner
    print $fh "hostssl   all pgauth_nginx 127.0.0.1/32 trust\n"
              . "hostnossl all pgauth_nginx 127.0.0.1/32 reject\n"
              . $text;
    close $fh;
    $pg->as_user("$pg->{bin}/pg_ctl", '-D', $pg->{data}, 'reload') == 0
        or die 'pg_ctl reload failed';
}
ok(wait_for(5, sub { (psql_nginx_role('sslmode=disable'))[0] != 0 }),
   'pg_hba now turns the nginx role away without TLS');
($rc, $out) = psql_nginx_role('sslmode=disable');
like($out, qr/pg_hba\.conf rejects connection .*no encryption/,
     '... saying "no encryption"');
($rc, $out) = psql_nginx_role("sslmode=verify-full sslrootcert=$tls/ca.crt");
is("$rc $out", '0 t', '... and lets it in with verify-full');

# --- verify-full: publish, deny, live control, replies of every size -------

my $pad_query = 'SELECT a.stream_name, a.session_id, a.valid_for,'
    . " repeat('x', coalesce(substring(\$4 from 'pad=([0-9]+)')::int, 0))"
    . ' FROM pgauth.authorize($1, $2, $3, $4, $5) a';

{
    my $ng = nginx('verify-full', $verify, "pgauth_query \"$pad_query\";");
    my $rport = $ng->{rtmp_port};

    my $r = rtmpc($rport, 'live', name => $key);
    is($r->{status}{code}, 'NetStream.Publish.Start',
       'verify-full: a valid key publishes') or diag join "\n", @{$r->{out}};
    $r = rtmpc($rport, 'live', name => 'f' x 40);
    is($r->{status}{code}, 'NetStream.Publish.Denied',
       'verify-full: a wrong key is denied');
    is($r->{status}{desc}, 'Stream key rejected', '... as rejected');

    ok(wait_for(5, sub { (nginx_tls())[0] >= 2 }),
       'verify-full: pool and LISTEN connections are up');
    my ($n, $ssl) = nginx_tls();
    ok($n && $ssl == $n, "verify-full: all $n of nginx's backends use TLS");
    is($pg->psql("SELECT count(*) FROM pg_stat_activity a"
                 . " JOIN pg_stat_ssl s USING (pid)"
                 . " WHERE a.application_name = 'nginx-rtmp-pgauth-listen'"
                 . " AND s.ssl"),
       1, '... the LISTEN connection among them');

    # sequential decisions on the pooled TLS connection: none waits for
    # the timeout
    my @ms;
    my $bad = 0;
    for my $i (1 .. 30) {
        my $r = rtmpc($rport, 'live', name => $i % 3 ? $key : 'e' x 40);
        my $want = $i % 3 ? 'NetStream.Publish.Start'
                          : 'NetStream.Publish.Denied';
        $bad++, diag "publish $i: $r->{status}{code}"
            unless $r->{status}{code} eq $want;
        push @ms, $r->{status}{ms};
    }
    is($bad, 0, 'verify-full: 30 sequential decisions, each the right one');
    my $worst = (sort { $b <=> $a } @ms)[0];
    cmp_ok($worst, '<', 1000, '... none stalls (worst well below the timeout)');
    diag sprintf 'TLS, 30 sequential decisions: median %.1f ms, worst %.1f ms',
                 median(@ms), $worst;

    # replies over many TLS records, sizes around the record (16 kB) and
    # libpq's buffer (16 kB, read in 8 kB or more) boundaries
    my @sizes = (0, 1000, 8000, 8150, 8192, 8300, 12000, 16000, 16300, 16384,
                 16500, 24576, 32700, 32768, 33000, 49152, 65536, 100000,
                 262144, 1048576);
    my (@slow, @wrong);
    @ms = ();
    for my $size (@sizes) {
        my $r = rtmpc($rport, 'live', name => "$key?pad=$size");
        push @wrong, "$size: $r->{status}{code}"
            unless $r->{status}{code} eq 'NetStream.Publish.Start';
        push @slow, "$size: $r->{status}{ms} ms" if $r->{status}{ms} >= 1000;
        push @ms, $r->{status}{ms};
    }
    is(join(', ', @wrong), '',
       'verify-full: replies of 0 to 1 MB padding all publish');
    is(join(', ', @slow), '', '... none stalls until the timeout');
    diag sprintf 'TLS, padded replies up to 1 MB: median %.1f ms, worst %.1f ms',
                 median(@ms), (sort { $b <=> $a } @ms)[0];

    # a burst: more publishes than the pool has connections, so new TLS
    # connections are opened while others are busy
    my @c = map { rtmpc_start($rport, 'live', name => "$key?pad=" . 5000 * $_,
                              hold => 500) } 1 .. 12;
    my @burst;
    my @other;
    my $ok = 0;
    for my $c (@c) {
        my ($line) = $c->wait_line(qr/^status /, 10);
        # a publisher taken over by a later one of the burst may hear so
        # as its first answer
        if ($line && $line =~ /NetStream\.Publish\.(Start|BadName)
                               |Denied\ Stream\ taken\ over/x)
        {
            $ok++;
        } else {
            push @other, $line // 'no status in 10 s';
        }
        push @burst, $1 if $line && $line =~ /^status ([\d.]+)/;
        waitpid $c->{pid}, 0;
    }
    is($ok, 12, 'verify-full: a burst of 12 publishes is answered')
        or diag join "\n", @other,
                     $ng->error_log =~ /^.*pgauth.*(?:timed out|failed).*$/mg;
    cmp_ok((sort { $b <=> $a } @burst)[0] // 1e9, '<', 1500,
           '... none waits for the timeout');
    ($n, $ssl) = nginx_tls();
    cmp_ok($n, '>', 2, "... over several pooled connections ($n backends)");
    ok($n && $ssl == $n, "... all of them TLS ($ssl)");

    # live control over the TLS LISTEN connection: a revoke behind 0 to
    # 3000 notifications for no session of ours (about 110 kB) in the same
    # transaction, so the one that matters comes last in a long stream of
    # TLS records
    my $dbh = DBI->connect("dbi:Pg:dbname=pgauth;host=127.0.0.1;port=$port",
                           'postgres', '', { AutoCommit => 1, RaiseError => 1,
                                             PrintError => 0 })
        or die "connect: $DBI::errstr";
    for my $noise (0, 300, 3000) {
        my $bob = $pg->create_key("bob$noise");
        my $id = $pg->psql("SELECT id FROM pgauth.stream_keys WHERE key_digest"
                           . " = sha256(convert_to('$bob', 'UTF8'))");
        my $c = rtmpc_start($rport, 'live', name => $bob);
        ok(scalar $c->wait_line(qr/^status .*NetStream\.Publish\.Start/, 10),
           "verify-full: bob$noise is live");
        $dbh->do(
            "DO \$\$ BEGIN PERFORM pg_notify('pgauth', 'end '"
            . " || (1000000000 + i) || ' noise')"
            . " FROM generate_series(1, $noise) i;"
            . " PERFORM pgauth.revoke_key($id); END \$\$");
        my $t1 = time;      # the COMMIT's reply
        my ($st) = $c->wait_line(qr/^status .* error /, 5);
        my ($closed, $tc) = $c->wait_line(qr/^closed /, 5);
        like($st || '', qr/NetStream\.Publish\.Denied Stream key revoked$/,
             "... revoked behind $noise other notifications: he is told,"
             . ' through the TLS LISTEN connection');
        ok($st && $closed && $tc - $t1 < 1, '... and closed at once')
            and diag sprintf 'TLS, revoke behind %d notifications:'
                             . ' closed %.1f ms after the COMMIT',
                             $noise, ($tc - $t1) * 1000;
        $c->stop;
    }
    $dbh->disconnect;

    is(plaintext_logins(), 0, 'verify-full: no plaintext login');
    retire($ng);
}

# --- verify-full by DNS name, require, prefer ------------------------------

for my $case (
    [ 'verify-full by DNS name',
      "host=localhost hostaddr=127.0.0.1 $base sslmode=verify-full"
      . " sslrootcert=$tls/ca.crt" ],
    [ 'sslmode=require', "host=127.0.0.1 $base sslmode=require" ],
    [ 'sslmode=prefer', "host=127.0.0.1 $base sslmode=prefer" ],
) {
    my ($what, $dsn) = @$case;
    my $ng = nginx($what, $dsn);
    my $r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
    is($r->{status}{code}, 'NetStream.Publish.Start', "$what: publishes")
        or diag join "\n", @{$r->{out}};
    cmp_ok($r->{status}{ms}, '<', 1000, "$what: ... promptly");
    $r = rtmpc($ng->{rtmp_port}, 'live', name => 'f' x 40);
    is($r->{status}{code}, 'NetStream.Publish.Denied',
       "$what: a wrong key is denied");
    ok(wait_for(5, sub { (nginx_tls())[0] >= 2 }),
       "$what: pool and LISTEN connections are up");
    my ($n, $ssl) = nginx_tls();
    ok($n && $ssl == $n, "$what: all $n of nginx's backends use TLS");
    retire($ng);
}

for my $ng (@nginx) {
    $ng->stop;
    is(join("\n", $ng->bad_lines), '',
       "$ng->{what}: no alert, crash or sanitizer report");
}

$pg->stop('fast');   # before File::Temp removes its folder

done_testing();
