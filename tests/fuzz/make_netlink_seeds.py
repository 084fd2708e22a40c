#!/usr/bin/env python3
"""Writes the seed corpora of the netlink_link and sock_diag fuzz targets: small datagrams as
the kernel sends them (a link dump, a deletion, an error; a socket dump, lookup answers), and a
few cut short. Run from the repository root: python3 tests/fuzz/make_netlink_seeds.py"""
import os
import struct

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK = 16, 17
SOCK_DIAG_BY_FAMILY = 20
IFLA_IFNAME, IFLA_MTU = 3, 4
INET_DIAG_INFO = 2
AF_INET, AF_INET6 = 2, 10


def align(data):
    return data + b"\0" * (-len(data) % 4)


def message(kind, seq, payload, flags=0):
    return align(struct.pack("<IHHII", 16 + len(payload), kind, flags, seq, 0) + payload)


def attr(kind, payload):
    return align(struct.pack("<HH", 4 + len(payload), kind) + payload)


def link(kind, index, name, arphrd=1, seq=1):
    body = struct.pack("<BBHiII", 0, 0, arphrd, index, 0x1043, 0)
    return message(kind, seq, body + attr(IFLA_IFNAME, name) + attr(IFLA_MTU, struct.pack("<I", 1500)), flags=2)


def error(seq, errno):
    return message(NLMSG_ERROR, seq, struct.pack("<i", -errno) + struct.pack("<IHHII", 32, 18, 1, seq, 0))


def diag(seq, family, state, sport, dport, cookie, info_bytes=None):
    sockid = struct.pack(">HH", sport, dport) + bytes(range(16)) + bytes(range(16, 32))
    sockid += struct.pack("<III", 0, cookie & 0xFFFFFFFF, cookie >> 32)
    body = struct.pack("<BBBB", family, state, 0, 0) + sockid + struct.pack("<IIIII", 0, 0, 4096, 0, 12345)
    if info_bytes is not None:
        body += attr(INET_DIAG_INFO, info_bytes)
    return message(SOCK_DIAG_BY_FAMILY, seq, body, flags=2)


def tcp_info(length):
    info = bytearray(length)
    for offset in range(0, length - 3, 4):
        struct.pack_into("<I", info, offset, offset * 7)
    return bytes(info)


def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as out:
        out.write(data)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    links = os.path.join(root, "netlink_link")
    dump = link(RTM_NEWLINK, 1, b"lo\0", arphrd=772) + link(RTM_NEWLINK, 2, b"eth0\0") + \
        link(RTM_NEWLINK, 7, b"wg0\0", arphrd=65534) + message(NLMSG_DONE, 1, struct.pack("<i", 0))
    write(links, "dump", dump)
    write(links, "deleted", link(RTM_DELLINK, 5, b"cilium_vxlan\0"))
    write(links, "refused", error(1, 1))
    write(links, "name_without_nul", link(RTM_NEWLINK, 3, b"veth1234"))
    write(links, "cut_short", dump[:45])

    diags = os.path.join(root, "sock_diag")
    established = diag(1, AF_INET, 1, 5432, 40000, 0x1122334455667788, tcp_info(232))
    write(diags, "dump", established + diag(1, AF_INET6, 4, 40001, 5432, 99, tcp_info(232)) +
          message(NLMSG_DONE, 1, struct.pack("<i", 0)))
    write(diags, "lookups", diag(1, AF_INET, 1, 5432, 40000, 7, tcp_info(232)) + error(2, 2) +
          diag(3, AF_INET, 6, 5432, 40002, 8, tcp_info(232)) + error(4, 116))
    write(diags, "old_kernel_tcp_info", diag(1, AF_INET, 1, 5432, 40000, 7, tcp_info(104)))
    write(diags, "refused", error(1, 22))
    write(diags, "cut_short", established[:60])


if __name__ == "__main__":
    main()
