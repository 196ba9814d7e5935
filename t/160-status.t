#!/usr/bin/perl
# pgauth_status: Prometheus figures and the node's live streams as JSON,
# aggregated over the workers; never a key.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new;
my $ng = Pgauth::Nginx->new(pg => $pg, workers => 2, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_cache_zone zone=c:1m ttl=1m;',
    app => 'pgauth_cache zone=c;',
    http => 'location = /live.json { pgauth_status public; }'));
my ($port, $hport) = ($ng->{rtmp_port}, $ng->{http_port});
my $key = $pg->create_key('alice');
my $bob = $pg->create_key('bob');

sub get {
    my ($path, $accept) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $hport) or die;
    print $s "GET $path HTTP/1.0\r\nHost: x\r\n" . ($accept ? "Accept: $accept\r\n" : '') . "\r\n";
    local $/;
    my $resp = <$s>;
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($code) = $head =~ m{^HTTP/\S+ (\d+)};
    my ($type) = $head =~ m{^Content-Type: (.*?)\r?$}mi;
    return ($code, $type, $body);
}

sub metric {
    my ($text, $name) = @_;
    my ($v) = $text =~ /^\Q$name\E (\S+)$/m;
    return $v // 0;
}

my $live = rtmpc_start($port, 'live', name => $key);
ok($live->wait_line(qr/Publish\.Start/, 5), 'alice is live');
for (1 .. 10) { rtmpc($port, 'live', name => "wrong$_") }
for (1 .. 3) { rtmpc($port, 'live', name => $bob) }

my ($code, $type, $text) = get('/pgauth_status');
is($code, 200, 'status: 200');
like($type, qr{^text/plain; version=0\.0\.4}, 'Prometheus text format');
like($text, qr/^# TYPE pgauth_decisions_total counter$/m, 'typed counters');
is(metric($text, 'pgauth_decisions_total{outcome="allowed",via="database"}'), 2,
   'allowed by the database: alice and bob\'s first, over both workers');
is(metric($text, 'pgauth_decisions_total{outcome="allowed",via="cache"}'), 2,
   'allowed from the cache: bob twice');
is(metric($text, 'pgauth_decisions_total{outcome="denied",via="database"}'), 10,
   'denied: ten wrong keys');
is(metric($text, 'pgauth_cache_hits_total') + metric($text, 'pgauth_cache_misses_total'), 14,
   'every decision looked at the cache');
is(metric($text, 'pgauth_live_streams'), 1, 'one live stream');
cmp_ok(metric($text, 'pgauth_pool_connections{state="idle"}')
       + metric($text, 'pgauth_pool_connections{state="busy"}'), '>=', 1, 'pool connections counted');
is(metric($text, 'pgauth_decision_seconds_count'), 14, 'the histogram counts every decision');
is(metric($text, 'pgauth_decision_seconds_bucket{le="+Inf"}'), 14, '... in its buckets');
unlike($text, qr/\Q$key\E|\Q$bob\E/, 'no key in the figures');

my $json;
($code, $type, $json) = get('/pgauth_status?format=json');
is($type, 'application/json', '?format=json gives JSON');
my $j = decode_json($json);
is(scalar @{$j->{streams}}, 1, 'one stream listed');
is($j->{streams}[0]{name}, 'alice', '... by its public name');
is($j->{streams}[0]{app}, 'live', '... with its application');
is($j->{streams}[0]{client}, '127.0.0.1', '... the client address');
cmp_ok(abs($j->{streams}[0]{since} - time), '<', 30, '... and since when');
is($j->{figures}{denied}, 10, 'the figures are there too');
unlike($json, qr/\Q$key\E/, 'no key in the JSON');

(undef, $type) = get('/pgauth_status', 'application/json, */*');
is($type, 'application/json', 'Accept: application/json gives JSON');

# "pgauth_status public": for a page anyone may load
($code, $type, $json) = get('/live.json');
is($type, 'application/json', 'public: JSON without asking');
$j = decode_json($json);
is_deeply([sort keys %$j], ['node_started', 'streams', 'streams_total'],
          '... no figures');
is($j->{streams_total}, 1, '... how many streams are live');
is_deeply([sort keys %{$j->{streams}[0]}], ['app', 'name', 'since', 'viewers'],
          '... no client address');
is($j->{streams}[0]{viewers}, 0, '... and its viewers (pgauth_viewer): none');
is($j->{streams}[0]{name}, 'alice', '... the stream by its public name');

$live->stop;
ok(wait_for(5, sub { decode_json((get('/pgauth_status?format=json'))[2])->{streams}->@* == 0 }),
   'the stream leaves the list when it ends');

# revoked while live: counted as ended
my $c = rtmpc_start($port, 'live', name => $key);
$c->wait_line(qr/Publish\.Start/, 5);
$pg->psql("SELECT pgauth.revoke_key(id) FROM pgauth.stream_keys WHERE stream_name = 'alice'");
$c->wait_line(qr/^closed/, 3);
(undef, undef, $text) = get('/pgauth_status');
is(metric($text, 'pgauth_publishes_ended_total'), 1, 'a revoked publish is counted as ended');

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# no application uses pgauth: nothing to show
my $ng2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(pgauth => ''));
$hport = $ng2->{http_port};
($code) = get('/pgauth_status');
is($code, 404, 'pgauth not in use: 404');
$ng2->stop;

done_testing();
