#!/bin/sh
# rootfs.sh BINDIR ROOT: lays relaymail out under ROOT the way the container
# image has it (packaging/container/Dockerfile copies ROOT into an empty
# image; container_test.go builds the same tree and runs it in a chroot).
# BINDIR holds the static sendmail and qmail-inject.
#
# There is no /etc/relaymail.conf, /etc/passwd or libc: the configuration is
# the environment (RELAYMAIL_*, secrets as RELAYMAIL_*_FILE), the login name
# of a uid without a passwd entry is $LOGNAME, $USER or uid<N>, and the
# binaries are static.
set -eu

bin=$1
root=$2

install -d -m 0755 "$root" "$root/usr/sbin" "$root/usr/bin" "$root/usr/lib" \
	"$root/var/qmail/bin" "$root/var/spool" "$root/etc/ssl/certs"
# Intake spools the message it reads in TMPDIR when the queue is off.
install -d -m 1777 "$root/tmp"

install -m 0755 "$bin/sendmail" "$root/usr/sbin/sendmail"
install -m 0755 "$bin/qmail-inject" "$root/usr/bin/qmail-inject"
ln -sf ../sbin/sendmail "$root/usr/bin/mailq"
ln -sf sendmail "$root/usr/sbin/newaliases"
ln -sf ../sbin/sendmail "$root/usr/lib/sendmail"
ln -sf /usr/bin/qmail-inject "$root/var/qmail/bin/qmail-inject"

# The spool belongs to the image's user, 65532, and to group 0, writable by
# the group: a platform that runs the container as an arbitrary uid in
# group 0 (OpenShift) can use it too. The binaries are not set-group-ID: in
# a container everything runs as one user, who owns the spool.
install -d -m 2770 -o 65532 -g 0 "$root/var/spool/relaymail"

# The CA certificates that verify the smarthost's TLS certificate.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
