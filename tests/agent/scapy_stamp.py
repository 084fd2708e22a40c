#!/usr/bin/python3
"""STAMP interoperation peer built on Scapy's STAMP layers (scapy.contrib.stamp, RFC 8762/8972,
unauthenticated mode), an implementation regionpulse did not write.

  send HOST PORT COUNT   Session-Sender: sends COUNT packets to our reflector, checks every
                         reply field by field, exits 0 when all are right (else prints why, 1).
  send-malformed HOST PORT
                         Session-Sender of one packet whose second TLV claims more octets than
                         the packet has: the reply must carry the first TLV flagged U and the
                         malformed one flagged M with the rest of the packet as sent.
  reflect COUNT          Session-Reflector, stateful: prints "port N" once bound, answers
                         COUNT packets (TLVs copied back, RFC 8972), then exits. Gives up after
                         15 s without traffic so a failed test leaves nothing running.
"""
import socket
import struct
import sys
import time

from scapy.contrib.stamp import (ErrorEstimate, STAMPSessionReflectorTestUnauthenticated,
                                 STAMPSessionSenderTestUnauthenticated, STAMPTestTLV)
from scapy.layers.inet import UDP

NTP_UNIX_OFFSET = 2208988800


def ptp_now():
    now = time.time_ns()
    return ((now // 1_000_000_000) << 32) | (now % 1_000_000_000)


def ptp_seconds(raw):
    return (raw >> 32) + (raw & 0xffffffff) / 1e9


def dissect(layer, payload):
    """Scapy's STAMP layers size their TLV list from the UDP length: give them a UDP parent."""
    return layer(payload, _parent=UDP(len=8 + len(payload)))


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def send(host, port, count):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    sock.connect((host, port))
    ssid = 0x5ca9
    for seq in range(count):
        ts = ptp_now()
        # Every other packet carries a TLV our reflector does not know: it must come back
        # with the U flag set (RFC 8972 section 4).
        tlvs = [STAMPTestTLV(type=200, len=9, value=b"scapy-tlv")] if seq % 2 else []
        request = STAMPSessionSenderTestUnauthenticated(
            seq=seq, err_estimate=ErrorEstimate(S=0, Z=1, scale=0, multiplier=1), ssid=ssid, tlv_objects=tlvs)
        # Scapy picks the timestamp field's type from the Z bit when the value is set, so
        # the PTPv2 value is set after the error estimate.
        request.ts = ts
        raw = bytes(request)
        sock.send(raw)
        try:
            data = sock.recv(65535)
        except socket.timeout:
            fail("no reply to seq %d" % seq)
        if len(data) != len(raw):
            fail("reply is %d bytes, request %d" % (len(data), len(raw)))
        reply = dissect(STAMPSessionReflectorTestUnauthenticated, data)
        if reply.seq_sender != seq:
            fail("seq_sender %d != %d" % (reply.seq_sender, seq))
        if reply.seq != seq:
            fail("stateful reflector numbering: seq %d for the %d-th packet" % (reply.seq, seq))
        if reply.ssid != ssid:
            fail("ssid %#x != %#x" % (reply.ssid, ssid))
        if reply.ts_sender != ts:
            fail("sender timestamp not echoed")
        if reply.err_estimate_sender.Z != 1:
            fail("sender error estimate not echoed")
        # The reflector stamps in PTPv2 format (Z=1): receive <= transmit, both near now.
        if reply.err_estimate.Z != 1:
            fail("reflector error estimate Z=%d" % reply.err_estimate.Z)
        rx, tx = ptp_seconds(reply.ts_rx), ptp_seconds(reply.ts)
        if not (rx <= tx and abs(tx - time.time()) < 5):
            fail("reflector timestamps rx=%f tx=%f" % (rx, tx))
        if reply.ttl_sender != 64:
            fail("sender TTL %d (loopback sends 64)" % reply.ttl_sender)
        if tlvs:
            if len(reply.tlv_objects) != 1:
                fail("TLV not returned")
            tlv = reply.tlv_objects[0]
            if tlv.type != 200 or tlv.value != b"scapy-tlv" or not (int(tlv.flags) & 0x80):
                fail("TLV returned as type=%d flags=%s value=%r" % (tlv.type, tlv.flags, tlv.value))
    print("OK %d" % count, flush=True)


def send_malformed(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    sock.connect((host, port))
    unknown = STAMPTestTLV(type=200, len=9, value=b"scapy-tlv")
    # Scapy writes the length it is given: 100 octets claimed, 9 present.
    malformed = STAMPTestTLV(type=201, len=100, value=b"truncated")
    request = STAMPSessionSenderTestUnauthenticated(
        seq=1, err_estimate=ErrorEstimate(S=0, Z=1, scale=0, multiplier=1), ssid=0x5cab,
        tlv_objects=[unknown, malformed])
    request.ts = ptp_now()
    raw = bytes(request)
    malformed_at = 44 + len(bytes(unknown))
    if raw[malformed_at + 1] != 201:
        fail("Scapy did not lay the TLVs out as expected: %r" % raw[44:])
    sock.send(raw)
    try:
        data = sock.recv(65535)
    except socket.timeout:
        fail("no reply to a packet with a malformed TLV (it must be reflected, not dropped)")
    if len(data) != len(raw):
        fail("reply is %d bytes, request %d" % (len(data), len(raw)))
    if not data[44] & 0x80 or data[45] != 200 or data[48:57] != b"scapy-tlv":
        fail("unknown TLV returned as %r" % data[44:57])
    if data[malformed_at] & 0x40 != 0x40:
        fail("malformed TLV flags %#x, M (0x40) not set" % data[malformed_at])
    if data[malformed_at + 1:] != raw[malformed_at + 1:]:
        fail("the rest of the packet was not returned as sent")
    print("OK malformed", flush=True)


def reflect(count):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    print("port %d" % port, flush=True)
    sock.settimeout(15.0)
    sessions = {}
    for _ in range(count):
        try:
            data, peer = sock.recvfrom(65535)
        except socket.timeout:
            fail("no probe for 15 s")
        received = time.time()
        request = dissect(STAMPSessionSenderTestUnauthenticated, data)
        key = (peer, request.ssid)
        sessions[key] = sessions.get(key, -1) + 1
        # Timestamps in NTP format (Z=0) on purpose: the sender must honour the Z bit. Scapy's
        # NTP field takes seconds since 1900; timestamp fields are set after the error
        # estimates that decide their type.
        reply = STAMPSessionReflectorTestUnauthenticated(
            seq=sessions[key], err_estimate=ErrorEstimate(S=0, Z=0, scale=0, multiplier=1),
            ssid=request.ssid, seq_sender=request.seq, err_estimate_sender=request.err_estimate,
            ttl_sender=255, tlv_objects=list(request.tlv_objects))
        reply.ts_sender = request.ts
        reply.ts_rx = received + NTP_UNIX_OFFSET
        reply.ts = time.time() + NTP_UNIX_OFFSET
        sock.sendto(bytes(reply), peer)
    print("OK %d" % count, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "send-malformed":
        send_malformed(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "reflect":
        reflect(int(sys.argv[2]))
    else:
        fail("usage: send HOST PORT COUNT | send-malformed HOST PORT | reflect COUNT")
