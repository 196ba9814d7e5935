#!/usr/bin/perl
# Two publishers of one stream name, decided in the database across
# workers and nodes: "takeover" (the default) lets the newcomer with a valid
# key replace the live one, which is told and closed; "refuse" turns the
# newcomer away.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new;

sub reasons {
    my ($name) = @_;
    return $pg->psql("SELECT string_agg(coalesce(end_reason, 'live'), ' ' ORDER BY id)"
                     . " FROM pgauth.sessions WHERE stream_name = '$name'");
}

for my $workers (1, 2) {
    my $ng = Pgauth::Nginx->new(pg => $pg, workers => $workers);
    my $port = $ng->{rtmp_port};
    my $name = "dup$workers";
    my $key = $pg->create_key($name);
    my $rotated = $pg->create_key($name);

    my $a = rtmpc_start($port, 'live', name => $key);
    ok($a->wait_line(qr/Publish\.Start/, 5), "$workers worker(s): the first publisher is live");

    my $b = rtmpc_start($port, 'live', name => $key);
    ok($b->wait_line(qr/Publish\.Start/, 5), "$workers worker(s): takeover: the newcomer publishes");
    ok($a->wait_line(qr/^closed/, 2), "$workers worker(s): ... the old publisher is closed");
    ok(grep({ $_->[0] =~ /error NetStream\.Publish\.Denied Stream taken over by another publisher$/ }
            @{$a->{lines}}), "$workers worker(s): ... and told why");

    # the same stream name with another key (rotation)
    my $c = rtmpc_start($port, 'live', name => $rotated);
    ok($c->wait_line(qr/Publish\.Start/, 5), "$workers worker(s): another key of the name takes over too");
    ok($b->wait_line(qr/^closed/, 2), "$workers worker(s): ... closing the previous one");
    sleep 0.3;
    is(reasons($name), 'takeover takeover live', "$workers worker(s): recorded as takeovers");
    $c->stop;

    $ng->stop;
    is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');
}

# a burst of publishers of one name, in two workers: the replies and the
# notifications of their takeovers come on different connections, in no set
# order (the padded replies take several reads).  Whatever the order, one
# publisher stays, and it is the one the database has open.
{
    my $pad = 'SELECT a.stream_name, a.session_id, a.valid_for,'
        . " repeat('x', coalesce(substring(\$4 from 'pad=([0-9]+)')::int, 0))"
        . ' FROM pgauth.authorize($1, $2, $3, $4, $5) a';
    my $ng = Pgauth::Nginx->new(pg => $pg, workers => 2,
        conf => Pgauth::Nginx::default_conf(rtmp => 'pgauth_pool_size 8;',
                                            app => "pgauth_query \"$pad\";"));
    my $key = $pg->create_key('burst');
    my (@bad, $early);
    for my $round (1 .. 8) {
        my @c = map { rtmpc_start($ng->{rtmp_port}, 'live',
                                  name => "$key?pad=" . ($_ % 4) * 200000,
                                  hold => 4000) } 1 .. 16;
        sleep 2.5;
        my $connected = 0;
        for my $c (@c) {
            $c->wait_line(qr/^closed/, 0.01);
            my @l = map { $_->[0] } @{$c->{lines}};
            $connected++ unless grep { /^closed/ } @l;
            my ($first) = grep { /^status / } @l;
            $early++ if $first && $first =~ /Denied Stream taken over/;
        }
        my $open = $pg->psql("SELECT count(*) FROM pgauth.sessions"
                             . " WHERE stream_name = 'burst' AND ended_at IS NULL");
        push @bad, "round $round: $connected connected, $open open"
            unless $connected == 1 && $open == 1;
        $_->stop for @c;
        waitpid $_->{pid}, 0 for @c;
        ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions"
                                       . " WHERE stream_name = 'burst'"
                                       . " AND ended_at IS NULL") == 0 }),
           "burst, round $round: all ended") if $round == 8;
    }
    is(join('; ', @bad), '',
       '16 publishers of one name at once, 8 times: one stays, and its session is the open one');
    note "burst: refused before going live, taken over already: " . ($early // 0);
    $ng->stop;
    is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');
}

# takeover across two nodes
{
    my $n1 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(rtmp => 'pgauth_node n1;'));
    my $n2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(rtmp => 'pgauth_node n2;'));
    my $key = $pg->create_key('roaming');
    my $a = rtmpc_start($n1->{rtmp_port}, 'live', name => $key);
    ok($a->wait_line(qr/Publish\.Start/, 5), 'two nodes: live on n1');
    my $b = rtmpc_start($n2->{rtmp_port}, 'live', name => $key);
    ok($b->wait_line(qr/Publish\.Start/, 5), 'two nodes: the same key publishes on n2');
    ok($a->wait_line(qr/^closed/, 2), 'two nodes: ... and n1 closes its publisher');
    sleep 0.3;
    is($pg->psql("SELECT string_agg(coalesce(end_reason, 'live') || ':' || node, ' ' ORDER BY id)"
                 . " FROM pgauth.sessions WHERE stream_name = 'roaming'"),
       'takeover:n1 live:n2', 'two nodes: recorded');
    $b->stop;
    $n1->stop;
    $n2->stop;
    is(join("\n", $n1->bad_lines, $n2->bad_lines), '', 'no alert, crash or sanitizer report');
}

# a takeover while the live publisher's session is still being recorded
# (it went live on the lookup, its record waits for its key): the
# newcomer, decided meanwhile, stays.  Sessions are ordered by when they
# went live: the lookup drew the first one's id (it failed when they were
# ordered by their record, and the one recorded last won).
{
    my $n1 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
        rtmp => 'pgauth_node n1;'));
    my $n2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
        rtmp => 'pgauth_node n2;', app => 'pgauth_lookup_first off;'));
    my $first = $pg->create_key('window');
    my $second = $pg->create_key('window');
    my $id = $pg->psql("SELECT id FROM pgauth.stream_keys"
                       . " WHERE key_digest = sha256(convert_to('$first', 'UTF8'))");
    ok($n1->pool_ready, 'record window: a pool connection free on n1');
    my $hold = Pgauth::Psql->new($pg);
    $hold->{dbh}->begin_work;
    $hold->run("SELECT id FROM pgauth.stream_keys WHERE id = $id FOR UPDATE");
    my $a = rtmpc_start($n1->{rtmp_port}, 'live', name => $first);
    ok($a->wait_line(qr/Publish\.Start/, 5), 'record window: live on n1 on the lookup');
    ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pg_stat_activity"
                                   . " WHERE wait_event_type = 'Lock'"
                                   . " AND query ~ 'pgauth\\.authorize'") == 1 }),
       'record window: ... its record waits for the key');
    my $b = rtmpc_start($n2->{rtmp_port}, 'live', name => $second);
    ok($b->wait_line(qr/Publish\.Start/, 5),
       'record window: the name\'s other key publishes on n2 meanwhile, recorded at once');
    $hold->{dbh}->commit;
    ok($a->wait_line(qr/^closed/, 3),
       'record window: ... the publisher live first is taken over');
    ok(!$b->wait_line(qr/^closed/, 1), 'record window: ... the newcomer stays');
    sleep 0.3;
    is($pg->psql("SELECT string_agg(coalesce(end_reason, 'live') || ':' || node,"
                 . " ' ' ORDER BY id) FROM pgauth.sessions WHERE stream_name = 'window'"),
       'takeover:n1 live:n2', 'record window: ... recorded in the order they went live');
    $a->stop;
    $b->stop;
    $n1->stop;
    $n2->stop;
    is(join("\n", $n1->bad_lines, $n2->bad_lines), '', 'no alert, crash or sanitizer report');
}

# the fix for "already publishing" after a dropped connection: the old
# encoder is frozen (its TCP connection open, nothing moving)
{
    my $ng = Pgauth::Nginx->new(pg => $pg);
    my $key = $pg->create_key('frozen');
    my $a = rtmpc_start($ng->{rtmp_port}, 'live', name => $key);
    ok($a->wait_line(qr/Publish\.Start/, 5), 'an encoder is live');
    kill 'STOP', $a->{pid};
    my $r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
    is($r->{status}{code}, 'NetStream.Publish.Start',
       'its connection is stuck; the encoder reconnecting takes over at once');
    kill 'CONT', $a->{pid};
    ok($a->wait_line(qr/^closed/, 3), 'the stuck connection was closed');
    $ng->stop;
    is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');
}

# refuse, on one node and across two
{
    my $n1 = Pgauth::Nginx->new(pg => $pg, workers => 2, conf => Pgauth::Nginx::default_conf(
        rtmp => 'pgauth_node n1;', app => 'pgauth_duplicate refuse;'));
    my $n2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
        rtmp => 'pgauth_node n2;', app => 'pgauth_duplicate refuse;'));
    my $key = $pg->create_key('solo');

    my $a = rtmpc_start($n1->{rtmp_port}, 'live', name => $key);
    ok($a->wait_line(qr/Publish\.Start/, 5), 'refuse: the first publisher is live');

    for my $n ($n1, $n2) {
        my $r = rtmpc($n->{rtmp_port}, 'live', name => $key);
        is($r->{status}{code}, 'NetStream.Publish.BadName',
           "refuse: a second publisher on node $n->{rtmp_port} is refused");
        is($r->{status}{desc}, 'Stream already live', '... told why');
        ok($r->{closed}, '... and closed');
    }
    ok(!$a->wait_line(qr/^closed/, 1), 'refuse: the first publisher is untouched');
    like($n2->error_log, qr/pgauth: refused app="live" addr="127\.0\.0\.1" fp=[0-9a-f]{8} reason="already live"/,
         'the refusal is logged');

    $a->stop;
    ok(wait_for(5, sub { reasons('solo') eq 'disconnect' }), 'the first publisher left');
    my $r = rtmpc($n2->{rtmp_port}, 'live', name => $key);
    is($r->{status}{code}, 'NetStream.Publish.Start', 'refuse: once it is gone, the name is free');
    # only authorize() can tell whether the name is free: no lookup first
    unlike($n1->error_log . $n2->error_log, qr/via=lookup/, 'refuse: never live on a lookup');

    $n1->stop;
    $n2->stop;
    is(join("\n", $n1->bad_lines, $n2->bad_lines), '', 'no alert, crash or sanitizer report');
}

done_testing();
