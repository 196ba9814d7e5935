#!/usr/bin/perl
# A database login with no grants at all can NOTIFY on the channel.  What
# it sends is a hint: no stream ends on its word, no future publish is
# ended in advance, and a flood of it costs nginx a bounded number of
# queries.  A real revoke still ends a stream within a second.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new(conf => [ 'track_functions = all' ]);
$pg->psql("CREATE ROLE stranger LOGIN");

# as the stranger: one session, the statements one after the other, each
# its own transaction
sub stranger {
    my (@sql) = @_;
    my $file = "$pg->{dir}/stranger.sql";
    Pgauth::spew($file, join '', map { "$_;\n" } @sql);
    my $out = `psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $pg->{port} -U stranger -d pgauth -f $file 2>&1`;
    die "stranger: $out" if $?;
}

sub checks {
    return $pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions"
                     . " WHERE schemaname = 'pgauth' AND funcname = 'check_sessions'");
}

sub session_of {
    my ($name) = @_;
    return $pg->psql("SELECT max(id) FROM pgauth.sessions WHERE stream_name = '$name'");
}

my $ng = Pgauth::Nginx->new(pg => $pg, workers => 2);
my $port = $ng->{rtmp_port};

is($pg->psql("SELECT has_schema_privilege('stranger', 'pgauth', 'USAGE')"), 'f',
   'the stranger has no right on the schema');

# a live stream, ended by the stranger's word
my $key = $pg->create_key('victim');
my $c = rtmpc_start($port, 'live', name => $key, hold => 30000);
ok($c->wait_line(qr/NetStream\.Publish\.Start/, 5), 'a publisher is live');
my $sid = session_of('victim');
stranger("NOTIFY pgauth, 'end $sid revoked'",
         "NOTIFY pgauth, 'end $sid kicked'",
         "NOTIFY pgauth, 'end $sid'");
ok(!$c->closed(2), "the stranger's \"end $sid revoked\" ends nothing");
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE id = $sid AND ended_at IS NULL"),
   1, '... the session is still open');

# forged ends of the next session ids, sent over and over while
# publishes come that get those ids
my $next = $pg->psql("SELECT max(id) FROM pgauth.sessions");
my @keys = map { $pg->create_key("later$_") } 1 .. 4;
my $forger = fork // die;
if (!$forger) {
    my $end = time + 3;
    stranger(map { "NOTIFY pgauth, 'end " . ($next + $_) . " takeover'" } 1 .. 40)
        while time < $end;
    POSIX::_exit(0);
}
sleep 0.5;
my @later;
for my $k (@keys) {
    push @later, rtmpc_start($port, 'live', name => $k, hold => 30000);
    $later[-1]->wait_line(qr/NetStream\.Publish\.Start/, 5);
    sleep 0.2;
}
waitpid $forger, 0;
is(scalar(grep { grep { $_->[0] =~ /NetStream\.Publish\.Start/ } @{$_->{lines}} } @later), 4,
   'four publishes given the forged ids go live');
sleep 1.5;
is(scalar(grep { !$_->closed } @later), 4, '... and stay live');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE stream_name LIKE 'later%'"
             . " AND ended_at IS NULL"), 4, '... their sessions open');

# a flood: 3,000 notifications of every kind, each its own transaction
my $before = checks();
my $t0 = time;
my @flood;
for my $i (1 .. 1000) {
    push @flood, "NOTIFY pgauth, 'recheck'",
                 "NOTIFY pgauth, 'end $sid revoked $i'",
                 sprintf("NOTIFY pgauth, 'key %064x'", $i);
    push @flood, "NOTIFY pgauth, 'end $sid revoked'" if $i % 10 == 0;
}
stranger(@flood);
my $secs = time - $t0;
sleep 1;
my $spent = checks() - $before;
# each worker: 5 at once, then one every 100 ms
my $bound = 2 * (5 + int(($secs + 1) * 1000 / 100) + 1);
cmp_ok($spent, '<=', $bound,
       sprintf '%d notifications in %.1f s: %d re-check queries from 2 workers'
               . ' (at most %d: 5, then one per 100 ms each)', scalar @flood,
               $secs, $spent, $bound);
my (undef, undef, $ping) = http_get($ng->{http_port}, '/ping');
cmp_ok($ping, '<', 0.5, sprintf 'HTTP answers meanwhile (%.0f ms)', $ping * 1000);
ok(!$c->closed(0.5), 'the victim is still live after the flood');
is(scalar(grep { !$_->closed } @later), 4, '... and the others');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL"), 5,
   '... their sessions open');

# the database's own word still ends it, at once
my $t = time;
$pg->psql("SELECT pgauth.revoke_key((SELECT id FROM pgauth.stream_keys"
          . " WHERE stream_name = 'victim'))");
ok($c->closed(2), sprintf 'a real revoke ends it (%.0f ms)',
                                          (time - $t) * 1000);
ok(grep({ $_->[0] =~ /Stream key revoked$/ } @{$c->{lines}}), '... with the reason');
is($pg->psql("SELECT end_reason FROM pgauth.sessions WHERE id = $sid"), 'revoked',
   '... recorded as revoked');

$_->stop for @later;
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
