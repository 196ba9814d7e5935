#!/usr/bin/perl
# Behind Debian's pgbouncer, in session and in transaction mode: publish,
# revoke within a second, takeover, an outage of PostgreSQL and of the
# pooler.  In transaction mode no session state is left on the pooled
# server connections, and LISTEN goes through pgauth_listen_dsn.  A LISTEN
# that hears nothing (through the pooler in transaction mode) is logged,
# and live control goes on by re-checks.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC, 'pgbouncer');

my $timeout_ms = 2000;

my $pg = Pgauth::Pg->new;

sub nginx_via {
    my ($dsn, $rtmp) = @_;
    my $conf = Pgauth::Nginx::default_conf(
        rtmp => "pgauth_node edge1; pgauth_heartbeat 1s; pgauth_pool_size 2;"
                . " $rtmp",
        app => "pgauth_timeout ${timeout_ms}ms;");
    $conf =~ s/%%DSN%%/$dsn/;
    return Pgauth::Nginx->new(conf => $conf);
}

sub live {
    my ($ng, $key) = @_;
    my $c = rtmpc_start($ng->{rtmp_port}, 'live', name => $key);
    my ($line) = $c->wait_line(qr/^status /, 10);
    return ($line // '') =~ /NetStream\.Publish\.Start/ ? $c : undef;
}

# revokes the keys of a stream name: when its COMMIT was answered
sub revoke {
    my ($name) = @_;
    my (undef, undef, $t1) = Pgauth::Psql->new($pg)
        ->run("SELECT pgauth.revoke_key('$name')");
    return $t1;
}

# what logins through the pooler find on its server connections: as many
# at once as it has, so that each connection is looked at
sub through {
    my ($b, $n, $sql) = @_;
    my @fh;
    for (1 .. $n) {
        open my $fh, '-|', 'psql', '-X', '-A', '-t', '-h', '127.0.0.1',
             '-p', $b->{port}, '-U', 'pgauth_nginx', '-d', 'pgauth', '-c',
             "SELECT $sql FROM pg_sleep(0.5)" or die "psql: $!";
        push @fh, $fh;
    }
    my @out;
    for my $fh (@fh) {
        local $/;
        my $o = <$fh> // '';
        $o =~ s/\s+\z//;
        push @out, $o;
    }
    return sort @out;
}

for my $mode ('session', 'transaction') {
    # session mode holds a server connection per client: the pool, LISTEN
    # and psql; transaction mode shares two
    my $b = Pgauth::Bouncer->new(pg => $pg, mode => $mode,
                                 pool => $mode eq 'session' ? 6 : 2);
    my $ng = nginx_via($b->dsn, $mode eq 'transaction'
                       ? 'pgauth_pool_mode transaction; pgauth_listen_dsn "'
                         . $pg->dsn . '";'
                       : '');
    my ($wpid) = $ng->worker_pids;

    my $key = $pg->create_key("$mode-a");
    my $c = live($ng, $key);
    ok($c, "$mode: publishes through pgbouncer");
    is($pg->psql("SELECT node || ' ' || worker_pid FROM pgauth.sessions"
                 . " WHERE stream_name = '$mode-a' AND ended_at IS NULL"),
       "edge1 $wpid", "$mode: the session is recorded as this worker's");
    my $r = rtmpc($ng->{rtmp_port}, 'live', name => 'wrong');
    is($r->{status}{code}, 'NetStream.Publish.Denied',
       "$mode: a wrong key is denied");

    if ($mode eq 'transaction') {
        # a session-level SET would stay on the server connection for
        # whoever gets it next
        my @seen = through($b, 2, "coalesce(current_setting('pgauth.node',"
                                  . " true), '') || '/'"
                                  . " || current_setting('statement_timeout')");
        is(join(' ', @seen), '/0 /0',
           'transaction: no pgauth.node or statement_timeout left on the'
           . ' pooled server connections');
        is($pg->listen_backends, 1,
           'transaction: LISTEN on a connection of its own, not pooled');
    }

    # revoke: off the air within a second
    my $t0 = revoke("$mode-a");
    my ($closed, $tc) = $c ? $c->wait_line(qr/^closed /, 5) : ();
    ok($closed && $tc - $t0 < 1, "$mode: a revoked publisher is closed"
       . " within 1 s") or diag "closed: " . ($closed ? $tc - $t0 : 'no');
    diag sprintf "%s: COMMIT to close %.1f ms", $mode, ($tc - $t0) * 1000
        if $closed;
    ok(grep({ /^status .* error NetStream\.Publish\.Denied Stream key revoked$/ }
            map { $_->[0] } @{$c ? $c->{lines} : []}),
       "$mode: ... told why");

    # takeover
    my $k2 = $pg->create_key("$mode-b");
    my $c1 = live($ng, $k2);
    my $c2 = live($ng, $k2);
    ok($c1 && $c2, "$mode: a second publisher of the key goes live");
    ($closed) = $c1 ? $c1->wait_line(qr/^closed /, 5) : ();
    ok($closed && grep({ /taken over/ } map { $_->[0] } @{$c1->{lines}}),
       "$mode: ... and the first is taken over");
    is($pg->open_sessions("$mode-b"), 1, "$mode: one session open");

    # PostgreSQL down behind the pooler
    $pg->stop('fast');
    $r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
    is($r->{status}{code}, 'NetStream.Failed',
       "$mode: PostgreSQL down: a publish is refused as unavailable");
    cmp_ok($r->{status}{ms} // 1e9, '<=', $timeout_ms + 500,
           "$mode: ... within pgauth_timeout");
    my ($code) = http_get($ng->{http_port}, '/ping');
    is($code, 200, "$mode: ... HTTP is served");
    ok($c2->alive, "$mode: ... the live stream goes on");
    $pg->start;
    my $k3 = $pg->create_key("$mode-c");
    ok(Pgauth::wait_for(20, sub { my $x = live($ng, $k3); $x && $x->stop; $x }),
       "$mode: PostgreSQL back: publishes again");

    # the pooler down
    $b->stop;
    $r = rtmpc($ng->{rtmp_port}, 'live', name => $k3);
    is($r->{status}{code}, 'NetStream.Failed',
       "$mode: pgbouncer down: a publish is refused as unavailable");
    cmp_ok($r->{status}{ms} // 1e9, '<=', $timeout_ms + 500,
           "$mode: ... within pgauth_timeout");
    ok($c2->alive, "$mode: ... the live stream goes on");
    $b->start;
    ok(Pgauth::wait_for(20, sub { my $x = live($ng, $k3); $x && $x->stop; $x }),
       "$mode: pgbouncer back: publishes again");

    # live control still works after both outages
    $t0 = revoke("$mode-b");
    ($closed, $tc) = $c2->wait_line(qr/^closed /, 5);
    ok($closed, "$mode: after the outages, a revoke still ends the stream")
        and diag sprintf "%s: COMMIT to close after the outages %.1f ms",
                         $mode, ($tc - $t0) * 1000;

    unlike($ng->error_log, qr/did not receive the notification/,
           "$mode: the LISTEN connection is not reported deaf");
    $ng->stop;
    is(join("\n", $ng->bad_lines), '', "$mode: no alert, crash or sanitizer report");
    $b->stop;
}

# LISTEN through the pooler in transaction mode: it succeeds, and no
# notification ever arrives.  Said in the log; re-checks end the stream.
{
    my $b = Pgauth::Bouncer->new(pg => $pg, mode => 'transaction', pool => 2);
    my $ng = nginx_via($b->dsn, 'pgauth_pool_mode transaction;'
                                . ' pgauth_listen_dsn "' . $b->dsn . '";');
    my $key = $pg->create_key('deaf');
    my $c = live($ng, $key);
    ok($c, 'LISTEN through the pooler: publishes');
    ok(Pgauth::wait_for(6, sub { $ng->error_log =~ /did not receive the notification/ }),
       '... the deaf LISTEN connection is logged');
    like($ng->error_log,
         qr/\[error\].*pgauth:\ the\ LISTEN\ connection\ on\ channel\ "pgauth"
            \ did\ not\ receive\ the\ notification\ sent\ to\ it\ in
            \ \d+ms:\ LISTEN\ does\ not\ work\ there\ \(a\ pooler\ in
            \ transaction\ mode\?\ see\ "pgauth_listen_dsn"\);\ every
            \ live\ session\ is\ re-checked\ every\ 1000ms\ instead/x,
         '... saying what to do');
    my $t0 = revoke('deaf');
    my ($closed, $tc) = $c ? $c->wait_line(qr/^closed /, 5) : ();
    ok($closed && $tc - $t0 < 2.5, '... a revoke ends the stream at the next'
       . ' re-check') or diag "closed: " . ($closed ? $tc - $t0 : 'no');
    diag sprintf "deaf LISTEN: COMMIT to close %.0f ms", ($tc - $t0) * 1000
        if $closed;
    my $n = () = $ng->error_log =~ /did not receive the notification/g;
    is($n, 1, '... logged once, not at every probe');
    $ng->stop;
    is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');
}

done_testing;
