#!/usr/bin/perl
# A revoke racing authorizations, in SQL under real concurrency: six
# connections call pgauth.authorize() for one key at the same moment while
# a seventh takes the key's right away (revoke_key, expire_key, delete_key
# or a plain UPDATE).  Whatever the order, no session may stay open under a
# key that is no longer valid: either an authorization saw the change and
# was refused, or the change saw its session and ended it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use DBI;
use POSIX ();
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql');

my $pg = Pgauth::Pg->new;
my $ROUNDS = 30;
my $AUTHORIZERS = 6;

sub connect_as {
    my ($user) = @_;
    return DBI->connect("dbi:Pg:dbname=pgauth;host=127.0.0.1;port=$pg->{port}",
                        $user, '', { AutoCommit => 1, RaiseError => 1,
                                     PrintError => 0 });
}

# Runs $code in a child with its own connection, from the moment $start;
# returns the pid.  The child's exit code is what $code returns (1 when it
# died); POSIX::_exit, so the child stops none of the parent's servers.
sub child {
    my ($user, $start, $code) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    return $pid if $pid;
    my $rc = eval {
        my $dbh = connect_as($user);
        my $wait = $start - time;
        sleep $wait if $wait > 0;
        my $r = $code->($dbh);
        $dbh->disconnect;
        $r;
    };
    POSIX::_exit(defined $rc ? $rc : 1);
}

my %changes = (
    revoke_key => 'SELECT pgauth.revoke_key(%d)',
    expire_key => 'SELECT pgauth.expire_key(%d)',
    delete_key => 'SELECT pgauth.delete_key(%d)',
    'plain UPDATE' => 'UPDATE pgauth.stream_keys SET enabled = false'
                      . ' WHERE id = %d',
);

for my $change (sort keys %changes) {
    my $allowed = 0;
    (my $tag = $change) =~ s/\W/_/g;
    for my $round (1 .. $ROUNDS) {
        my $name = "r_${tag}_$round";
        my $key = $pg->create_key($name);
        my $id = $pg->psql("SELECT id FROM pgauth.stream_keys"
                           . " WHERE stream_name = '$name'");
        my $start = time + 0.1;
        my @pids;
        for my $a (1 .. $AUTHORIZERS) {
            push @pids, child('pgauth_nginx', $start, sub {
                my ($dbh) = @_;
                my $rows = $dbh->selectall_arrayref(
                    "SELECT session_id FROM pgauth.authorize("
                    . "sha256(convert_to(?, 'UTF8')), 'live', '127.0.0.1',"
                    . " '', 'takeover')", undef, $key);
                return @$rows ? 10 : 11;
            });
        }
        # the change lands somewhere among the authorizations
        push @pids, child('postgres', $start + 0.001 * ($round % 5), sub {
            my ($dbh) = @_;
            $dbh->do(sprintf $changes{$change}, $id);
            return 0;
        });
        for my $pid (@pids) {
            waitpid $pid, 0;
            $allowed++ if $? >> 8 == 10;
        }
    }
    my $open = $pg->psql(
        "SELECT count(*) FROM pgauth.sessions s"
        . " LEFT JOIN pgauth.stream_keys k ON k.id = s.key_id"
        . " WHERE s.stream_name LIKE 'r\\_${tag}\\_%' AND s.ended_at IS NULL"
        . "   AND (k.id IS NULL OR NOT k.enabled OR k.expires_at <= now())");
    is($open, 0, "$change racing $AUTHORIZERS authorizations, $ROUNDS rounds:"
                 . " no session left open under the invalid key"
                 . " ($allowed authorizations allowed)");
    cmp_ok($allowed, '>', 0, "... some authorizations came first");
}

done_testing();
