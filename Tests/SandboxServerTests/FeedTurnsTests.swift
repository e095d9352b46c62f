import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import RORFHIR

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
                    let count = inside.withLockedValue { $0[id, default: 0] += 1; return $0[id]! }
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
            waiting.append(Task {
                await turns.begin("loc")
                order.withLockedValue { $0.append(index) }
                turns.end("loc")
            })
            try await Task.sleep(for: .milliseconds(20))  // queued one after the other
        }
        await turns.begin("other")  // another Location: not held up by the queue above
        turns.end("other")
        #expect(order.withLockedValue { $0 }.isEmpty)
        turns.end("loc")
        for task in waiting { await task.value }
        #expect(order.withLockedValue { $0 } == [1, 2, 3])
    }
}
