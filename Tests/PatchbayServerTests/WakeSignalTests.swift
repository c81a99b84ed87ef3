import Testing

@testable import PatchbayServer

@Suite("Wake signal")
struct WakeSignalTests {
    @Test func notificationsBeforeAWaitCoalesceIntoOneWakeUp() async {
        let wake = WakeSignal()
        wake.notify()
        wake.notify()
        let clock = ContinuousClock()
        let first = await clock.measure { await wake.wait(timeout: .seconds(30)) }
        #expect(first < .seconds(5), "a notification before the wait ends it at once")
        let second = await clock.measure { await wake.wait(timeout: .milliseconds(50)) }
        #expect(second >= .milliseconds(50), "the two notifications were one wake-up")
    }

    @Test func waitReturnsAtOnceWhenNotifiedAndOtherwiseAfterTheTimeout() async {
        let wake = WakeSignal()
        wake.notify()
        let clock = ContinuousClock()
        let notified = await clock.measure { await wake.wait(timeout: .seconds(30)) }
        #expect(notified < .seconds(5), "an earlier notification ends the wait at once")
        let timedOut = await clock.measure { await wake.wait(timeout: .milliseconds(50)) }
        #expect(timedOut >= .milliseconds(50))
    }

    @Test func aNotificationWakesAWaiter() async {
        let wake = WakeSignal()
        let clock = ContinuousClock()
        let start = clock.now
        let waiter = Task { await wake.wait(timeout: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(20))
        wake.notify()
        await waiter.value
        #expect(clock.now - start < .seconds(5), "woken by the notification, not by the 30 s timeout")
    }
}
