namespace ControlPlane.Operator.Policy;

/// <summary>What an active time-bound grant (an AccessRequest's, a BreakGlass's) does on this pass.</summary>
public enum GrantCourse { Hold, Expire, End }

/// <summary>
/// The expiry rule both time-bound grants share, pure: an active grant is read from its recorded expiry (never
/// recomputed from the spec, so it holds across restarts and leader hand-over): ended early when asked, expired from
/// the recorded time on, else held, with its binding put back if someone removed it. An ended grant's binding goes.
/// </summary>
public static class Grants
{
    public static (GrantCourse Course, BindingAction Binding) ActiveCourse(DateTime recordedExpiry, DateTime now, bool endEarly, bool bindingExists)
    {
        var ends = BindingEnds(bindingExists);
        if (endEarly) return (GrantCourse.End, ends);
        return now >= recordedExpiry.ToUniversalTime() ? (GrantCourse.Expire, ends) : (GrantCourse.Hold, bindingExists ? BindingAction.None : BindingAction.Ensure);
    }

    /// <summary>An ended (or never started) grant's binding: deleted if it is there.</summary>
    public static BindingAction BindingEnds(bool bindingExists) => bindingExists ? BindingAction.Delete : BindingAction.None;

    /// <summary>How long until the earliest of <paramref name="times"/> still ahead; null when none is.</summary>
    public static TimeSpan? RecheckIn(DateTime now, params DateTime?[] times)
    {
        var ahead = times.OfType<DateTime>().Select(t => t.ToUniversalTime()).Where(t => t > now).ToList();
        return ahead.Count == 0 ? null : ahead.Min() - now;
    }
}
