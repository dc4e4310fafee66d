import CWarrenSpawn
import Foundation
import WarrenCore

/// Time limits and bookkeeping of the listener thread.
extension ListenerLoop {
    // MARK: - Time limits

    func expire(at now: Double) {
        for listener in listeners.values {
            let limit = listener.owner?.waitLimit ?? 10
            while let first = listener.held.first, now - first.since >= limit {
                listener.held.removeFirst()
                close(first.fd)
                listener.counts.dropped += 1
                listener.dirty = true
            }
        }
        for (fd, handover) in handovers where handover.deadline <= now {
            handovers[fd] = nil
            finish(handover, control: fd, .refused("no answer from the tunnel's ssh in time"))
        }
    }

    func timeoutMilliseconds() -> Int32 {
        var earliest = Double.infinity
        for listener in listeners.values {
            if let first = listener.held.first {
                earliest = min(earliest, first.since + (listener.owner?.waitLimit ?? 10))
                if listener.route != nil { earliest = min(earliest, listener.retryAt) }
            }
        }
        for handover in handovers.values { earliest = min(earliest, handover.deadline) }
        guard earliest.isFinite else { return -1 }
        return Int32(max(0, min(60_000, ((earliest - Self.now()) * 1000).rounded(.up))))
    }

    // MARK: - Bookkeeping

    /// A client connection of runner `generation` ended: a runner retired by
    /// a reload ends its ssh once the last one has.
    func connectionEnded(_ generation: UInt64) {
        let left = (openByGeneration[generation] ?? 1) - 1
        openByGeneration[generation] = left > 0 ? left : nil
        if left <= 0, let waiters = drainWaiters.removeValue(forKey: generation) {
            for waiter in waiters { waiter.resume() }
        }
    }

    func dropHeld(_ listener: Listener) {
        for client in listener.held { close(client.fd) }
        listener.counts.dropped += listener.held.count
        listener.held.removeAll()
        listener.dirty = true
    }

    func notify() {
        for listener in listeners.values where listener.dirty {
            listener.dirty = false
            if let owner = listener.owner { owner.onCounts(owner.index, listener.counts) }
        }
    }

    func forget(_ listener: Listener) { forgetIfDone(listener) }

    /// A closed listener is forgotten once nothing of it is left in flight.
    func forgetIfDone(_ listener: Listener) {
        guard listener.closed, listener.inFlight == 0, listener.open == 0, listener.held.isEmpty else { return }
        notify()
        listeners[ObjectIdentifier(listener)] = nil
    }

    func setAccepting(_ listener: Listener, _ on: Bool) {
        guard listener.accepting != on, !(on && listener.closed) else { return }
        listener.accepting = on
        for fd in listener.socket.fds {
            if on {
                listening[fd] = listener
                watch(fd, .listener)
            } else {
                epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
                listening[fd] = nil
            }
        }
    }

    func watch(_ fd: Int32, _ kind: Kind) {
        var event = epoll_event(events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, data: epoll_data_t(u64: UInt64(UInt32(bitPattern: fd)) << 2 | kind.rawValue))
        epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
    }

    func unwatchAndClose(_ fd: Int32) {
        epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        close(fd)
    }
}
