"""Scripts whose processes meet as distributed training does: over MASTER_ADDR/MASTER_PORT, with plain
sockets (torch.distributed's env:// reads the same variables). Shared by the local, Docker and Ray tests."""

RENDEZVOUS = """
    import os, socket, sys, time
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    seen = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK",
                                           "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")}
    print("rank", rank, "variables", sorted(seen.items()), flush=True)
    print("rank", rank, "cwd", os.getcwd(), flush=True)
    if rank == 0:
        server = socket.create_server((addr, port))
        server.settimeout(120)
        met = []
        for _ in range(world - 1):
            conn, _ = server.accept()
            met.append(int(conn.recv(16).decode()))
            conn.sendall(b"welcome")
            conn.close()
        print("rank 0 met ranks", sorted(met), flush=True)
        out = sys.argv[1] if len(sys.argv) > 1 else "outputs"
        os.makedirs(out, exist_ok=True)
        open(os.path.join(out, "met.txt"), "w").write(" ".join(map(str, sorted(met))))
    else:
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = socket.create_connection((addr, port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        conn.sendall(str(rank).encode())
        print("rank", rank, "got", conn.recv(16).decode(), flush=True)
"""

# Rank 1 fails; rank 0 waits for it for ever (until the launcher stops it).
ONE_RANK_FAILS = """
    import os, sys, time
    if os.environ["RANK"] == "1":
        print("rank 1 gives up", flush=True)
        sys.exit(3)
    print("rank 0 waiting", os.getpid(), flush=True)
    time.sleep(600)
"""
