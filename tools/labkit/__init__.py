# labkit: the multi-region lab behind tools/lab (network namespaces, wireguard-go, the WAN
# emulator, agents, aggregators, PostgreSQL replication, the failover controller).
