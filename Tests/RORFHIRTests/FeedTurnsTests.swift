import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import RORFHIR
@testable import SandboxTestSupport

/// Capacity feeds of one Location take turns (no two inside at once, in arrival order); other Locations never wait.
@Suite("Capacity feed turns")
struct FeedTurnsTests {
    @Test func oneFeedAtATimePerLocation() async throws {
        let turns = FeedTurns()
        let inside = NIOLockedValueBox<[String: Int]>([:])
        let overlaps = NIOLockedValueBox(0)
        let done = NIOLockedValueBox(0)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                let id = index % 2 == 0 ? "a" : "b"
                group.addTask {
                    await turns.begin(id)
                    defer { turns.end(id) }
                    let count = inside.withLockedValue {
                        $0[id, default: 0] += 1
                        return $0[id]!
                    }
                    if count > 1 { overlaps.withLockedValue { $0 += 1 } }
                    try? await Task.sleep(for: .milliseconds(1))
                    inside.withLockedValue { $0[id]! -= 1 }
                    done.withLockedValue { $0 += 1 }
                }
            }
        }
        #expect(overlaps.withLockedValue { $0 } == 0)
        #expect(done.withLockedValue { $0 } == 40)
        // Every turn given back: a new feed of either Location proceeds at once.
        await turns.begin("a")
        turns.end("a")
    }

    @Test func waitingFeedsGoInArrivalOrderAndOthersDoNotWait() async throws {
        let turns = FeedTurns()
        await turns.begin("loc")
        let order = NIOLockedValueBox<[Int]>([])
        var waiting: [Task<Void, Never>] = []
        for index in 1...3 {
            waiting.append(
                Task {
                    await turns.begin("loc")
                    order.withLockedValue { $0.append(index) }
                    turns.end("loc")
                }
            )
            while turns.waitingCount("loc") < index { await Task.yield() }  // queued one after the other
        }
        await turns.begin("other")  // another Location: not held up by the queue above
        turns.end("other")
        #expect(order.withLockedValue { $0 }.isEmpty)
        turns.end("loc")
        for task in waiting { await task.value }
        #expect(order.withLockedValue { $0 } == [1, 2, 3])
    }

    /// A thread waits for a turn another thread holds (an event loop answering at once) and gets it when it is
    /// given back; it gives up after its timeout, leaving the queue as it was.
    @Test func aThreadWaitsForAThreadsTurn() async throws {
        let turns = FeedTurns()
        // On threads of their own from start to end: the test's timing never depends on the tasks of other tests.
        let (waited, taken) = await onThread { () -> (Bool?, Bool) in
            guard turns.take("loc", waitingUpTo: .seconds(10)) else { return (nil, false) }
            let got = NIOLockedValueBox<Bool?>(nil)
            let finished = DispatchSemaphore(value: 0)
            Thread {
                let taken = turns.take("loc", waitingUpTo: .seconds(60))
                got.withLockedValue { $0 = taken }
                finished.signal()
            }.start()
            usleep(100_000)
            let waiting = got.withLockedValue { $0 }
            turns.end("loc")
            _ = finished.wait(timeout: .now() + 60)
            return (waiting, got.withLockedValue { $0 } ?? false)
        }
        #expect(waited == nil, "still waiting while the turn was held")
        #expect(taken, "given the turn when it was given back")
        // Held by the waiter now; another thread gives up after its timeout, and the turn stays the waiter's.
        #expect(await onThread { !turns.take("loc", waitingUpTo: .milliseconds(20)) })
        #expect(await onThread { !turns.take("loc", waitingUpTo: .milliseconds(1)) })
        turns.end("loc")
        #expect(turns.take("loc", waitingUpTo: .milliseconds(1)), "free again")
        turns.end("loc")
    }

    /// A turn held by a task (the route, which may wait for a read) is not waited for on a thread, nor is one with a
    /// task queued for it: the thread is told at once, even with a long timeout (the turn is given back meanwhile).
    @Test func aThreadDoesNotWaitForATasksTurn() async throws {
        let turns = FeedTurns()
        await turns.begin("loc")
        let release = Task {
            try? await Task.sleep(for: .milliseconds(200))
            turns.end("loc")
        }
        #expect(await onThread { !turns.take("loc", waitingUpTo: .seconds(10)) })
        await release.value
        #expect(turns.take("loc", waitingUpTo: .seconds(10)))
        let queued = Task {
            await turns.begin("loc")
            turns.end("loc")
        }
        while turns.waitingCount("loc") == 0 { await Task.yield() }  // the task is queued for the turn
        #expect(await onThread { turns.take("other", waitingUpTo: .seconds(10)) }, "another Location")
        turns.end("other")
        let release2 = Task {
            try? await Task.sleep(for: .milliseconds(200))
            turns.end("loc")
        }
        #expect(await onThread { !turns.take("loc", waitingUpTo: .seconds(10)) }, "a task is queued before")
        await release2.value
        await queued.value
    }

    /// Threads and tasks feeding the same Locations: never two inside one at once, every feed done or told to go
    /// elsewhere, every turn given back.
    @Test func threadsAndTasksShareTurns() async throws {
        let turns = FeedTurns()
        let inside = NIOLockedValueBox<[String: Int]>([:])
        let overlaps = NIOLockedValueBox(0)
        let outcomes = NIOLockedValueBox((done: 0, declined: 0))
        @Sendable func work(_ id: String) {
            let count = inside.withLockedValue {
                $0[id, default: 0] += 1
                return $0[id]!
            }
            if count > 1 { overlaps.withLockedValue { $0 += 1 } }
            usleep(300)
            inside.withLockedValue { $0[id]! -= 1 }
            outcomes.withLockedValue { $0.done += 1 }
        }
        let threads = (0..<8).map { index in
            Thread {
                for round in 0..<25 {
                    let id = (index + round) % 2 == 0 ? "a" : "b"
                    if turns.take(id, waitingUpTo: .milliseconds(50)) {
                        work(id)
                        turns.end(id)
                    } else {
                        outcomes.withLockedValue { $0.declined += 1 }
                    }
                }
            }
        }
        threads.forEach { $0.start() }
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                let id = index % 2 == 0 ? "a" : "b"
                group.addTask {
                    await turns.begin(id)
                    work(id)
                    turns.end(id)
                }
            }
        }
        for _ in 0..<1000 where outcomes.withLockedValue({ $0.done + $0.declined }) < 240 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(overlaps.withLockedValue { $0 } == 0)
        #expect(outcomes.withLockedValue { $0.done + $0.declined } == 240)
        #expect(outcomes.withLockedValue { $0.done } > 40, "threads got turns")
        for id in ["a", "b"] {
            #expect(turns.take(id, waitingUpTo: .milliseconds(1)), "\(id) free")
            turns.end(id)
        }
    }
}

/// Runs `body` on a thread of its own: a wait there never holds up the tests' tasks (2 cooperative threads here).
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}
