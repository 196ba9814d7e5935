package FakePg;

# A hostile PostgreSQL: enough of the v3 protocol (startup, simple and
# extended queries, notifications) for libpq to talk to it, answering
# what the module asks the way a misbehaving server or a misconfigured
# query would.  Not a stand-in for PostgreSQL in ordinary tests: only for
# what a real server cannot be made to do on cue.
#
#   my $fake = FakePg->new(mode => 'copy');   # authorize answers COPY OUT
#   $fake->{port}; $fake->notify_and_reset('recheck'); $fake->log
#
# Modes: 'normal' (authorize allows "alice", session 1), 'copy'.  It runs
# in a child process; notify_and_reset() tells it, by a signal, to send a
# notification on the connection that LISTENs and close that connection
# with a reset.

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(sleep time);

sub new {
    my ($class, %o) = @_;
    my $self = bless { mode => 'normal', %o }, $class;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => 0, Proto => 'tcp',
                                       Listen => 64, ReuseAddr => 1)
        or die "FakePg: $!";
    $self->{port} = $listen->sockport;
    $self->{logfile} = $o{log} or die "FakePg: log => file";
    open my $lf, '>', $self->{logfile} or die;
    close $lf;

    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $self->serve($listen);
        POSIX::_exit(0);
    }
    close $listen;
    $self->{pid} = $pid;
    return $self;
}

sub log {
    my ($self) = @_;
    open my $fh, '<', $self->{logfile} or return '';
    local $/;
    return <$fh> // '';
}

sub notify_and_reset {
    my ($self) = @_;
    kill 'USR1', $self->{pid};
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

sub DESTROY {
    my ($self) = @_;
    $self->stop if $self->{pid} && $$ != $self->{pid};
}


# --- the child ---

my $poke = 0;

sub serve {
    my ($self, $listen) = @_;
    $SIG{USR1} = sub { $poke = 1 };
    $SIG{TERM} = sub { POSIX::_exit(0) };
    open my $log, '>>', $self->{logfile} or die;
    $log->autoflush(1);
    $self->{out} = $log;
    my $sel = IO::Select->new($listen);
    my %conn;
    my $backend = 1000;

    for (;;) {
        if ($poke) {
            $poke = 0;
            for my $c (values %conn) {
                next unless $c->{listening};
                my $sock = $c->{sock};
                my $body = pack('N', $c->{pid}) . "pgauth\0recheck\0";
                syswrite $sock, 'A' . pack('N', 4 + length $body) . $body;
                setsockopt($sock, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
                $sel->remove($sock);
                delete $conn{fileno $sock};
                close $sock;
                $self->say("notified and reset connection $c->{pid}");
            }
        }
        my @ready = $sel->can_read(0.05);
        for my $s (@ready) {
            if ($s == $listen) {
                my $sock = $listen->accept or next;
                $sel->add($sock);
                $conn{fileno $sock} = { sock => $sock, buf => '',
                                        started => 0, pid => $backend++ };
                next;
            }
            my $c = $conn{fileno $s};
            my $n = sysread $s, $c->{buf}, 65536, length $c->{buf};
            if (!$n) {
                $sel->remove($s);
                delete $conn{fileno $s};
                close $s;
                next;
            }
            if (!$self->input($c)) {
                $sel->remove($s);
                delete $conn{fileno $s};
                close $s;
            }
        }
    }
}

sub say {
    my ($self, $line) = @_;
    print { $self->{out} } "$line\n";
}

sub send_msg {
    my ($c, $type, $body) = @_;
    syswrite $c->{sock}, $type . pack('N', 4 + length $body) . $body;
}

# returns false to close the connection
sub input {
    my ($self, $c) = @_;
    for (;;) {
        if (!$c->{started}) {
            return 1 if length $c->{buf} < 8;
            my ($len, $code) = unpack 'NN', $c->{buf};
            return 1 if length $c->{buf} < $len;
            substr($c->{buf}, 0, $len, '');
            if ($code == 80877103 || $code == 80877104) {
                # SSLRequest, GSSENCRequest: neither
                syswrite $c->{sock}, 'N';
                next;
            }
            $c->{started} = 1;
            send_msg($c, 'R', pack('N', 0));
            for my $p ([ server_version => '15.0' ],
                       [ server_encoding => 'UTF8' ],
                       [ client_encoding => 'UTF8' ],
                       [ standard_conforming_strings => 'on' ],
                       [ integer_datetimes => 'on' ],
                       [ DateStyle => 'ISO, MDY' ]) {
                send_msg($c, 'S', "$p->[0]\0$p->[1]\0");
            }
            send_msg($c, 'K', pack('NN', $c->{pid}, 42));
            send_msg($c, 'Z', 'I');
            next;
        }
        return 1 if length $c->{buf} < 5;
        my ($type, $len) = unpack 'aN', $c->{buf};
        return 1 if length $c->{buf} < 1 + $len;
        my $body = substr($c->{buf}, 5, $len - 4);
        substr($c->{buf}, 0, 1 + $len, '');

        if ($type eq 'X') {
            return 0;
        } elsif ($type eq 'Q') {
            (my $q = $body) =~ s/\0\z//;
            for my $stmt (grep { /\S/ } split /;/, $q) {
                my ($tag) = $stmt =~ /^\s*(\w+)/;
                send_msg($c, 'C', uc($tag) . "\0");
                $c->{listening} = 1 if $tag =~ /^listen$/i;
            }
            send_msg($c, 'Z', 'I');
            $self->say("simple $c->{pid}: $q");
        } elsif ($type eq 'P') {
            my (undef, $q) = split /\0/, $body;
            $c->{query} = $q;
            send_msg($c, '1', '');
        } elsif ($type eq 'B') {
            send_msg($c, '2', '');
        } elsif ($type eq 'D') {
            $self->describe($c);
        } elsif ($type eq 'E') {
            $self->execute($c);
        } elsif ($type eq 'S') {
            send_msg($c, 'Z', 'I') unless $c->{copying};
        }
    }
}

# what each query of the module gets: columns, rows
sub answer {
    my ($self, $q) = @_;
    return ([ 'stream_name', 'session_id', 'valid_for', 'takeover' ],
            [ [ 'alice', '1', undef, 'f' ] ])
        if $q =~ /authorize/;
    return ([ 'other_pid', 'same_host' ], []) if $q =~ /worker_register/;
    return ([ 'worker_start' ], []) if $q =~ /worker_start/;
    return ([ 'session_id', 'end_reason', 'valid_for' ], [])
        if $q =~ /check_sessions/;
    return ([ 'heartbeat' ], [ [ 't' ] ]) if $q =~ /heartbeat/;
    return ([ 'take_over' ], [ [ 't' ] ]) if $q =~ /take_over/;
    return ([ 'a', 'b', 'c', 'd' ], [ [ '1', 'n', '1', 'h' ] ])
        if $q =~ /set_config/;
    return ([ 'result' ], [ [ '' ] ]);
}

sub describe {
    my ($self, $c) = @_;
    if ($self->{mode} eq 'copy' && $c->{query} =~ /authorize/) {
        # no row description: the reply comes as COPY
        send_msg($c, 'n', '');
        return;
    }
    my ($cols) = $self->answer($c->{query});
    my $body = pack 'n', scalar @$cols;
    $body .= "$_\0" . pack('NnNnNn', 0, 0, 25, 0xffff, 0xffffffff, 0)
        for @$cols;
    send_msg($c, 'T', $body);
}

sub execute {
    my ($self, $c) = @_;
    $self->say("query $c->{pid}: $c->{query}");
    if ($self->{mode} eq 'copy' && $c->{query} =~ /authorize/) {
        # COPY OUT, one text column, and then nothing: no data, no end
        send_msg($c, 'H', pack('Cnn', 0, 1, 0));
        $c->{copying} = 1;
        $self->say("copy $c->{pid}");
        return;
    }
    my (undef, $rows) = $self->answer($c->{query});
    for my $r (@$rows) {
        my $body = pack 'n', scalar @$r;
        for my $v (@$r) {
            $body .= defined $v ? pack('N', length $v) . $v
                                : pack('N', 0xffffffff);
        }
        send_msg($c, 'D', $body);
    }
    send_msg($c, 'C', 'SELECT ' . scalar(@$rows) . "\0");
}

1;
