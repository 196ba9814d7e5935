#!/usr/bin/perl
# A decision refused for time has no later effect: pgauth_timeout counts
# the time a request waits for a connection, statement_timeout only the
# time it runs, so an authorization can commit after its client was told
# "timed out".  It must not have taken the stream over from the publisher
# that is live: nobody would be left on the air.
#
# Set-up: one pooled connection, held 0.8 s by a slow query of another
# application; the new publisher's authorization waits behind it, then
# waits for the key's row (locked here) past its 1 s deadline, and commits
# once the lock goes at 1.5 s.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use DBI;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new;

my $conf = Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 1;',
    app => 'pgauth_timeout 1s;',
    http => '');
# a second application whose query holds the connection for 0.8 s
$conf =~ s/(        application live \{)/        application slow {
            live on;
            pgauth on;
            pgauth_timeout 3s;
            pgauth_query "SELECT a.* FROM pgauth.authorize(\$1, \$2, \$3, \$4, \$5) a, pg_sleep(0.8)";
        }

$1/;
my $ng = Pgauth::Nginx->new(pg => $pg, conf => $conf);
my $port = $ng->{rtmp_port};

my $key = $pg->create_key('alice');
my $slow = $pg->create_key('other', 'slow');

my $a = rtmpc_start($port, 'live', name => $key, hold => 30000);
ok($a->wait_line(qr/NetStream\.Publish\.Start/, 5), 'alice is live');
my $sid = $pg->psql("SELECT max(id) FROM pgauth.sessions WHERE stream_name = 'alice'");

# the key's row held: an authorization of it waits
my $dbh = DBI->connect("dbi:Pg:dbname=pgauth;host=127.0.0.1;port=$pg->{port}",
                       'postgres', '', { AutoCommit => 0, RaiseError => 1,
                                         PrintError => 0 });
$dbh->do("SELECT * FROM pgauth.stream_keys WHERE stream_name = 'alice' FOR UPDATE");

my $t0 = time;
my $x = rtmpc_start($port, 'slow', name => $slow, hold => 3000);
sleep 0.05;
my $b = rtmpc_start($port, 'live', name => $key, hold => 10000);
my ($st) = $b->wait_line(qr/^status /, 3);
my $refused = time - $t0;
like($st // '', qr/error NetStream\.Failed/, 'the second publisher is refused');
cmp_ok($refused, '<', 1.4, sprintf '... at its deadline (%.2f s)', $refused);
ok(wait_for(2, sub { $ng->error_log =~ /reason="timed out"/ }), '... for time');

sleep(1.5 - (time - $t0)) if time - $t0 < 1.5;
$dbh->commit;
$dbh->disconnect;

# the authorization commits now, after its client was refused
ok(wait_for(3, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions"
                               . " WHERE stream_name = 'alice'") == 2 }),
   'the late authorization committed a session');
ok(wait_for(3, sub { $pg->psql("SELECT coalesce(max(end_reason), '') FROM pgauth.sessions"
                               . " WHERE stream_name = 'alice' AND id > $sid") eq 'client gone' }),
   '... which the late reply closed again ("client gone")');
ok(!$a->wait_line(qr/^closed/, 2), 'the live publisher was not taken over');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE id = $sid AND ended_at IS NULL"),
   1, '... its session is open');

$a->stop;
$x->stop;
$b->stop;
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
