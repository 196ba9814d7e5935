#!/usr/bin/perl
# make bench, private HLS: what pgauth_viewer costs a segment request,
# written to docs/benchmarks-viewers.md.
#
#   perl util/bench-viewers.pl [--out docs/benchmarks-viewers.md] [--quick]
#
# One nginx (one worker) serves the same HLS segment from two locations
# side by side: /open/ (a plain alias) and /private/ (pgauth_viewer on,
# the request carrying a valid session).  wrk loads each in turn, three
# times; PostgreSQL's pg_stat_statements counts the viewer decisions
# asked meanwhile.  Then a viewer's first request, with a token never used:
# /private/ against /ar/, the usual way today (auth_request to the Go
# service of t/bench/authsvc, which runs the same authorize_viewer()),
# each over /open/.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);
use Pgauth;

my $out = "$TOP/docs/benchmarks-viewers.md";
my $quick = 0;
GetOptions('out=s' => \$out, 'quick' => \$quick) or die "usage\n";

my $SECS = $quick ? 3 : 10;
my $CONN = 16;

need_tools('wrk', 'ffmpeg', 'psql');
system("make -s -C $TOP objs/ngx_rtmp_pgauth_module.so") == 0 or die;
system("sh $TOP/t/bench/authsvc/build.sh $TOP/build/authsvc >/dev/null") == 0
    or die "authsvc does not build (apt-get install golang-go golang-github-lib-pq-dev)\n";
my $FIRST_N = $quick ? 50 : 200;

my $pg = Pgauth::Pg->new(conf => [ "shared_preload_libraries = 'pg_stat_statements'",
                                   "pg_stat_statements.track = all" ]);
$pg->psql("CREATE EXTENSION pg_stat_statements");

my $goport = free_port();
my $gopid = fork // die;
if (!$gopid) {
    exec "$TOP/build/authsvc/authsvc", '-listen', "127.0.0.1:$goport",
         '-dsn', $pg->dsn . ' sslmode=disable', '-pool', 8;
    die "exec authsvc: $!";
}
wait_for(10, sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $goport) })
    or die "authsvc does not listen\n";

my $ng = Pgauth::Nginx->new(pg => $pg, log_level => 'warn',
                            conf => Pgauth::Nginx::default_conf(
    app => 'hls_cleanup off;',
    http => <<"EOF"));
        location /open/ { alias %%HLS%%/; }
        location /private/ { pgauth_viewer on; alias %%HLS%%/; }
        location /ar/ { auth_request /_viewer; alias %%HLS%%/; }
        location = /_viewer {
            internal;
            proxy_pass http://127.0.0.1:$goport/viewer;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Real-IP \$remote_addr;
        }
EOF
my $port = $ng->{http_port};

my $key = $pg->create_key('alice');
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$ng->{rtmp_port}/live/$key", 30);
wait_for(20, sub { $ng->last_segment('alice') >= 1 }) or die "no HLS\n";
my $seg = 'alice-' . $ng->last_segment('alice') . '.ts';
my $size = -s "$ng->{hls}/$seg";

my $token = $pg->psql("SELECT pgauth.create_viewer_token('alice')");
my $r = http_request($port, "/private/alice.m3u8?token=$token");
die "no session: $r->{status}\n" unless $r->{status} == 200;
my ($session) = ($r->{headers}{'set-cookie'}[0] // '') =~ /^pgauth_alice=([^;]+)/;

sub calls {
    return $pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                     . " WHERE query ~* 'authorize_viewer'"
                     . " AND query !~* 'pg_stat_statements'");
}

# wrk's requests/s and requests, and how many were not 200
sub wrk {
    my ($path) = @_;
    my $o = `wrk -t1 -c$CONN -d${SECS}s http://127.0.0.1:$port$path 2>&1`;
    my ($rps) = $o =~ /Requests\/sec:\s+([\d.]+)/;
    my ($n) = $o =~ /(\d+) requests in/;
    my ($bad) = $o =~ /Non-2xx or 3xx responses: (\d+)/;
    die "wrk: $o" unless defined $rps;
    return ($rps, $n, $bad // 0);
}

my (%rps, %bad, $requests);
my $calls0 = calls();
# three runs in turn: the host's speed varies from minute to minute, and
# the median of three is not swayed by one slow run
for my $round (1 .. 3) {
    for my $where ('open', 'private') {
        my $path = $where eq 'open' ? "/open/$seg" : "/private/$seg?pgauth=$session";
        my ($rps, $n, $bad) = wrk($path);
        push @{$rps{$where}}, $rps;
        $bad{$where} += $bad;
        $requests += $n if $where eq 'private';
        printf "bench-viewers: %s round %d: %.0f requests/s, %d not 200\n",
               $where, $round, $rps, $bad;
    }
}
my $calls = calls() - $calls0;

# a viewer's first request: a token never used, each way in turn
my @tokens = split /\n/, $pg->psql("SELECT pgauth.create_viewer_token('alice')"
                                   . " FROM generate_series(1, " . 2 * $FIRST_N . ")");
my (%first, %status);
for my $i (0 .. $FIRST_N - 1) {
    for my $way ('open', 'private', 'ar') {
        my $path = $way eq 'open' ? '/open/alice.m3u8'
                 : "/$way/alice.m3u8?token=" . $tokens[$way eq 'private' ? 2 * $i : 2 * $i + 1];
        my $r = http_request($port, $path);
        push @{$first{$way}}, $r->{seconds} * 1000;
        $status{$way}{$r->{status}}++;
    }
}
sub pct {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return $v[int($p * $#v + 0.5)];
}
my %p50 = map { $_ => pct(0.5, @{$first{$_}}) } keys %first;
my %p99 = map { $_ => pct(0.99, @{$first{$_}}) } keys %first;
my $add_priv = $p50{private} - $p50{open};
my $add_ar = $p50{ar} - $p50{open};
printf "bench-viewers: first request p50: open %.3f, private %.3f, auth_request %.3f ms\n",
       $p50{open}, $p50{private}, $p50{ar};

kill 'INT', $ff;
waitpid $ff, 0;
kill 'TERM', $gopid;
waitpid $gopid, 0;

my $open = median(@{$rps{open}});
my $priv = median(@{$rps{private}});
# each run's ratio is of one minute of the host: the median of those
my @ratios = map { $rps{private}[$_] / ($rps{open}[$_] || 1) } 0 .. $#{$rps{open}};
my $ratio = median(@ratios);
my $per10k = $calls * 10000 / ($requests || 1);
(my $commit = `git -C $TOP rev-parse --short HEAD`) =~ s/\s+//g;

my $md = "# Benchmarks: private HLS\n\n"
    . "Written by `make bench` (`perl util/bench-viewers.pl"
    . ($quick ? ' --quick' : '') . "`) on "
    . strftime('%Y-%m-%d %H:%M UTC', gmtime) . ", commit $commit.  One nginx\n"
    . "worker serves the same $size-byte HLS segment from two locations side by\n"
    . "side: `/open/`, a plain alias, and `/private/`, `pgauth_viewer on`, each\n"
    . "request carrying a valid viewer session (`?pgauth=`).  wrk, one thread,\n"
    . "$CONN connections, $SECS s a run, each location three times in turn;\n"
    . "everything on this machine over loopback.\n\n"
    . "| | requests/s (the three runs) | median |\n|---|---|---|\n"
    . sprintf("| /open/ | %s | %.0f |\n", join(', ', map { sprintf '%.0f', $_ } @{$rps{open}}), $open)
    . sprintf("| /private/, with a session | %s | %.0f |\n",
              join(', ', map { sprintf '%.0f', $_ } @{$rps{private}}), $priv)
    . sprintf("| ratio | %s | %.2f |\n\n",
              join(', ', map { sprintf '%.2f', $_ } @ratios), $ratio)
    . sprintf("Responses other than 200: %d open, %d private.  PostgreSQL was asked\n"
              . "`authorize_viewer()` %d times during the %d private requests: %.2f per\n"
              . "10,000 segment requests after the first.\n\n",
              $bad{open}, $bad{private}, $calls, $requests, $per10k)
    . "| target | measured | met |\n|---|---|---|\n"
    . sprintf("| at least 0.90 of the same location's requests/s without pgauth_viewer | %.2f | %s |\n",
              $ratio, $ratio >= 0.90 ? 'yes' : 'no')
    . sprintf("| 0 queries per 10,000 segment requests after the first | %.2f | %s |\n",
              $per10k, $calls == 0 ? 'yes' : 'no')
    . sprintf("| first request's added latency at most a third of an auth_request service's, p50 | %.3f ms vs %.3f ms (%.2f) | %s |\n\n",
              $add_priv, $add_ar, $add_priv / ($add_ar || 1),
              $add_priv <= $add_ar / 3 ? 'yes' : 'no')
    . "A viewer's first request, with a token never used, $FIRST_N of each in turn\n"
    . "(HTTP/1.0, a connection each, the playlist): `/private/` asks\n"
    . "`authorize_viewer()` through the worker's pool; `/ar/` is the usual way\n"
    . "today, `auth_request` to `t/bench/authsvc` (Go net/http + lib/pq, a\n"
    . "prepared statement, a pool of 8) running the same function, on every\n"
    . "request.\n\n"
    . "| | p50 (ms) | p99 (ms) | added over /open/, p50 | answers |\n|---|---|---|---|---|\n"
    . join('', map {
          my $w = $_;
          sprintf("| %s | %.3f | %.3f | %s | %s |\n", $w eq 'ar' ? '/ar/ (auth_request)' : "/$w/",
                  $p50{$w}, $p99{$w}, $w eq 'open' ? '—' : sprintf('%.3f', $p50{$w} - $p50{open}),
                  join(' ', map { "$status{$w}{$_}× $_" } sort keys %{$status{$w}}))
      } qw(open private ar));

Pgauth::spew($out, $md);
print "bench-viewers: wrote $out\n";
