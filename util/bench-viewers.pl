#!/usr/bin/perl
# make bench, private HLS: what pgauth_viewer costs a segment request,
# written to docs/benchmarks-viewers.md.
#
#   perl util/bench-viewers.pl [--out docs/benchmarks-viewers.md] [--quick]
#
# One nginx (one worker) serves the same HLS segment from two locations
# side by side: /open/ (a plain alias) and /private/ (pgauth_viewer on,
# the request carrying a valid session).  wrk loads each in turn, twice;
# PostgreSQL's pg_stat_statements counts the viewer decisions asked
# meanwhile.

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

my $pg = Pgauth::Pg->new(conf => [ "shared_preload_libraries = 'pg_stat_statements'",
                                   "pg_stat_statements.track = all" ]);
$pg->psql("CREATE EXTENSION pg_stat_statements");

my $ng = Pgauth::Nginx->new(pg => $pg, log_level => 'warn',
                            conf => Pgauth::Nginx::default_conf(
    app => 'hls_cleanup off;',
    http => <<'EOF'));
        location /open/ { alias %%HLS%%/; }
        location /private/ { pgauth_viewer on; alias %%HLS%%/; }
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
for my $round (1, 2) {
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

kill 'INT', $ff;
waitpid $ff, 0;

sub mean { my $s = 0; $s += $_ for @_; return @_ ? $s / @_ : 0 }
my $open = mean(@{$rps{open}});
my $priv = mean(@{$rps{private}});
my $ratio = $priv / ($open || 1);
my $per10k = $calls * 10000 / ($requests || 1);
(my $commit = `git -C $TOP rev-parse --short HEAD`) =~ s/\s+//g;

my $md = "# Benchmarks: private HLS\n\n"
    . "Written by `make bench` (`perl util/bench-viewers.pl"
    . ($quick ? ' --quick' : '') . "`) on "
    . strftime('%Y-%m-%d %H:%M UTC', gmtime) . ", commit $commit.  One nginx\n"
    . "worker serves the same $size-byte HLS segment from two locations side by\n"
    . "side: `/open/`, a plain alias, and `/private/`, `pgauth_viewer on`, each\n"
    . "request carrying a valid viewer session (`?pgauth=`).  wrk, one thread,\n"
    . "$CONN connections, $SECS s a run, each location twice in turn; everything\n"
    . "on this machine over loopback.\n\n"
    . "| | requests/s (the two runs) | mean |\n|---|---|---|\n"
    . sprintf("| /open/ | %s | %.0f |\n", join(', ', map { sprintf '%.0f', $_ } @{$rps{open}}), $open)
    . sprintf("| /private/, with a session | %s | %.0f |\n",
              join(', ', map { sprintf '%.0f', $_ } @{$rps{private}}), $priv)
    . sprintf("| ratio | | %.2f |\n\n", $ratio)
    . sprintf("Responses other than 200: %d open, %d private.  PostgreSQL was asked\n"
              . "`authorize_viewer()` %d times during the %d private requests: %.2f per\n"
              . "10,000 segment requests after the first.\n\n",
              $bad{open}, $bad{private}, $calls, $requests, $per10k)
    . "| target | measured | met |\n|---|---|---|\n"
    . sprintf("| at least 0.90 of the same location's requests/s without pgauth_viewer | %.2f | %s |\n",
              $ratio, $ratio >= 0.90 ? 'yes' : 'no')
    . sprintf("| 0 queries per 10,000 segment requests after the first | %.2f | %s |\n",
              $per10k, $calls == 0 ? 'yes' : 'no')
    . "| first request's added latency at most a third of an auth_request service's | not measured yet | — |\n";

Pgauth::spew($out, $md);
print "bench-viewers: wrote $out\n";
