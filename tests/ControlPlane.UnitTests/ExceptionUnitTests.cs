using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The Exception kind's pure rules: its spec, its life (ExceptionPlan), who may approve it, and what it covers on an intent.</summary>
public sealed class ExceptionUnitTests
{
    const string Ns = "acme-dev";
    static readonly string Sha = new('a', 64);
    static readonly string OtherSha = new('b', 64);
    static readonly DateTime Created = new(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);
    static readonly DateTime Now = Created.AddDays(1);

    static SecurityException Exc(string name = "waiver", string type = "vulnerability", string severity = "High", string[]? covers = null, string? sha = null,
        DateTime? expires = null, string owner = "dana@acme.io", string author = "olga@acme.io", ExceptionStatusLike? status = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name, NamespaceProperty = Ns, Uid = "uid-" + name, Generation = 1, CreationTimestamp = Created,
            Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = author },
        },
        Spec = new SecurityExceptionSpec
        {
            Type = type, Artifact = new ExceptionArtifact { Image = "registry.example/orders:2.1.0", Sha256 = sha ?? Sha },
            Covers = [.. covers ?? ["CVE-2025-12345"]], Severity = severity, CompensatingControls = ["WAF rule 9001 blocks the upload path"],
            Owner = owner, ExpiresAt = expires ?? Created.AddDays(30),
            Justification = "The vulnerable parser is unreachable because uploads are disabled in this service.",
        },
        Status = status is null ? null : new SecurityExceptionStatus { Phase = status.Phase, ObservedGeneration = status.Generation, ApprovedBy = status.ApprovedBy, ApprovedAt = status.ApprovedAt },
    };

    sealed record ExceptionStatusLike(ExceptionPhase Phase, long Generation = 1, string? ApprovedBy = null, DateTime? ApprovedAt = null);

    static Tenant TenantWith(string? maxDuration = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = "acme" },
        Spec = new TenantSpec { Region = "eu", ExceptionPolicy = maxDuration is null ? null : new TenantExceptionPolicy { MaxDuration = maxDuration } },
    };

    static Approval ApprovalOf(SecurityException target, string approver, string decision = "approve", string name = "apr") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Ns },
        Spec = new ApprovalSpec
        {
            Target = new ApprovalTarget { Kind = SecurityException.KubeKind, Name = target.Metadata.Name }, Decision = decision, Approver = approver,
            TargetGeneration = target.Metadata.Generation, TargetUID = target.Metadata.Uid,
        },
    };

    static V1RoleBinding Bound(string role, params string[] users) => new()
    {
        Metadata = new V1ObjectMeta { Name = "rb-" + WorkspaceRoles.Kebab(role), NamespaceProperty = Ns },
        RoleRef = new V1RoleRef { Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(role) },
        Subjects = [.. users.Select(u => new Rbacv1Subject { Kind = "User", Name = u })],
    };

    // sam is a SecurityReviewer; carol an Approver; alice a WorkspaceAdmin; rick both SecurityReviewer and Approver.
    static readonly V1RoleBinding[] Bindings =
        [Bound("SecurityReviewer", "sam@acme.io", "rick@acme.io", "dana@acme.io", "ian@acme.io"), Bound("Approver", "carol@acme.io", "rick@acme.io"), Bound("WorkspaceAdmin", "alice@acme.io")];

    static IEnumerable<V1RoleBinding> BindingsIn(string ns) => ns == Ns ? Bindings : [];

    static DeploymentIntent Intent(string author, string? sha = null, string name = "orders-2-1-0") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Ns, Uid = "i-" + name, Generation = 1, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = author } },
        Spec = new DeploymentIntentSpec { Application = "orders", Version = "2.1.0", Artifact = new Artifact { Image = "registry.example/orders:2.1.0", Sha256 = sha ?? Sha } },
    };

    static ApprovalState Approved(params string[] by) => new(true, false, 1, by, [], "approved by " + string.Join(", ", by));
    static readonly ApprovalState NotApproved = new(false, false, 1, [], [], "0 of 1 approval(s) for generation 1");

    // --- the spec rules (admission and reconcile) ---

    [Fact]
    public void AValidException_HasNoProblems()
    {
        Assert.Empty(ExceptionRules.Problems(Exc().Spec, ExceptionRules.DefaultMaxDuration, Created, Created));
    }

    [Fact]
    public void ExpiresAt_BeyondTheTenantsMaxDuration_OrInThePast_IsRefused_NamingTheField()
    {
        var tooLong = Exc(expires: Created.AddDays(91)).Spec;
        var problem = Assert.Single(ExceptionRules.Problems(tooLong, ExceptionRules.MaxDuration(TenantWith()), Created, Created));
        Assert.StartsWith("spec.expiresAt:", problem);
        Assert.Contains("spec.exceptionPolicy.maxDuration (90d)", problem);
        // The tenant's own policy: 30d.
        Assert.Equal(TimeSpan.FromDays(30), ExceptionRules.MaxDuration(TenantWith("30d")));
        Assert.Contains(ExceptionRules.Problems(Exc(expires: Created.AddDays(31)).Spec, ExceptionRules.MaxDuration(TenantWith("30d")), Created, Created), p => p.Contains("(30d)"));
        Assert.Empty(ExceptionRules.Problems(Exc(expires: Created.AddDays(30)).Spec, ExceptionRules.MaxDuration(TenantWith("30d")), Created, Created));
        // Already past at admission.
        Assert.Contains(ExceptionRules.Problems(Exc(expires: Created.AddMinutes(-1)).Spec, ExceptionRules.DefaultMaxDuration, Created, Created), p => p.StartsWith("spec.expiresAt:") && p.Contains("not in the future"));
        // An unparsable policy falls back to the default, never to "unbounded".
        Assert.Equal(ExceptionRules.DefaultMaxDuration, ExceptionRules.MaxDuration(TenantWith("forever")));
    }

    [Fact]
    public void EveryOtherRule_NamesItsField()
    {
        var spec = Exc().Spec;
        spec.CompensatingControls = [];
        spec.Justification = "because";
        spec.Owner = "system:serviceaccount:acme-dev:ci";
        spec.Covers = ["CVE-1", "CVE *", "CVE-1"];
        spec.Artifact.Sha256 = "abc";
        spec.Type = "whatever";
        var problems = ExceptionRules.Problems(spec, ExceptionRules.DefaultMaxDuration, Created, Created);
        foreach (var field in new[] { "spec.compensatingControls:", "spec.justification:", "spec.owner:", "spec.covers[1]:", "spec.covers:", "spec.artifact.sha256:", "spec.type:" })
        {
            Assert.Contains(problems, p => p.StartsWith(field, StringComparison.Ordinal));
        }

        // Compensating controls are needed only from High.
        var medium = Exc(severity: "Medium").Spec;
        medium.CompensatingControls = null;
        Assert.Empty(ExceptionRules.Problems(medium, ExceptionRules.DefaultMaxDuration, Created, Created));
        // A long justification of one repeated word is not a justification.
        var padded = Exc().Spec;
        padded.Justification = string.Join(" ", Enumerable.Repeat("ok", 40));
        Assert.Contains(ExceptionRules.Problems(padded, ExceptionRules.DefaultMaxDuration, Created, Created), p => p.StartsWith("spec.justification:"));
    }

    // --- its life ---

    [Fact]
    public void Pending_UntilApproved_ThenActive_WithApprovedByAndAt_AndLookedAtAgainAtExpiresAt()
    {
        var pending = ExceptionPlan.Decide(new(Exc(), TenantWith(), NotApproved, Now));
        Assert.Equal(ExceptionPhase.Pending, pending.Phase);
        Assert.Contains(pending.Conditions, c => c is { Type: "Ready", Status: false, Reason: "AwaitingApproval" });
        Assert.Equal(Created.AddDays(30) - Now, pending.RecheckIn);
        // First seen, waiting: the ask for this generation (approval.requested), no Event.
        Assert.Equal(ApprovalAskPlans.ExceptionAction, Assert.Single(pending.Audits).Action);
        Assert.Empty(pending.Notices);

        var active = ExceptionPlan.Decide(new(Exc(), TenantWith(), Approved("sam@acme.io"), Now));
        Assert.Equal(ExceptionPhase.Active, active.Phase);
        Assert.Equal("sam@acme.io", active.ApprovedBy);
        Assert.Equal(Now, active.ApprovedAt);
        Assert.Contains(active.Conditions, c => c is { Type: "Ready", Status: true, Reason: "Active" });
        Assert.Contains(active.Conditions, c => c is { Type: "Approved", Status: true });
        Assert.Equal("exception.approved", Assert.Single(active.Audits).Action);
        Assert.Equal(Created.AddDays(30) - Now, active.RecheckIn);

        // A pass later with nothing new: same approvedAt, no audit, no Event (zero writes).
        var again = ExceptionPlan.Decide(new(Exc(status: new(ExceptionPhase.Active, 1, "sam@acme.io", Now)), TenantWith(), Approved("sam@acme.io"), Now.AddHours(1)));
        Assert.Equal(Now, again.ApprovedAt);
        Assert.Empty(again.Audits);
        Assert.Empty(again.Notices);
    }

    [Fact]
    public void Expired_AtExpiresAt_FromTheRecordedTime_KeepingWhoApproved_AuditedOnce()
    {
        var exc = Exc(expires: Now, status: new(ExceptionPhase.Active, 1, "sam@acme.io", Created));
        var expired = ExceptionPlan.Decide(new(exc, TenantWith(), Approved("sam@acme.io"), Now));
        Assert.Equal(ExceptionPhase.Expired, expired.Phase);
        Assert.Equal("sam@acme.io", expired.ApprovedBy);
        Assert.Null(expired.RecheckIn);
        Assert.Contains(expired.Conditions, c => c is { Type: "Ready", Status: false, Reason: "Expired" });
        Assert.Equal("exception.expired", Assert.Single(expired.Audits).Action);
        Assert.True(Assert.Single(expired.Notices).Warning);
        // A second before, it still counts.
        Assert.True(ExceptionPlan.Counts(new(exc, TenantWith(), Approved("sam@acme.io"), Now.AddSeconds(-1))));
        Assert.False(ExceptionPlan.Counts(new(exc, TenantWith(), Approved("sam@acme.io"), Now)));
        // Already Expired: nothing more to audit.
        Assert.Empty(ExceptionPlan.Decide(new(Exc(expires: Now, status: new(ExceptionPhase.Expired)), TenantWith(), Approved("sam@acme.io"), Now)).Audits);
    }

    [Fact]
    public void Rejected_ByAReviewer_ByTheTenantsPolicy_OrOutsideAWorkspace()
    {
        var rejected = ExceptionPlan.Decide(new(Exc(), TenantWith(), new ApprovalState(false, true, 1, [], ["sam@acme.io"], "rejected by sam@acme.io"), Now));
        Assert.Equal((ExceptionPhase.Rejected, "exception.rejected"), (rejected.Phase, Assert.Single(rejected.Audits).Action));
        // The tenant tightened its policy after admission: rejected at reconcile, naming the field.
        var policy = ExceptionPlan.Decide(new(Exc(expires: Created.AddDays(60)), TenantWith("30d"), Approved("sam@acme.io"), Now));
        Assert.Equal(ExceptionPhase.Rejected, policy.Phase);
        Assert.Contains(policy.Conditions, c => c.Type == "Ready" && c.Reason == "PolicyViolation" && c.Message.StartsWith("spec.expiresAt:"));
        Assert.Equal(ExceptionPhase.Rejected, ExceptionPlan.Decide(new(Exc(), null, Approved("sam@acme.io"), Now)).Phase);
        // Stalled derives from these (kstatus).
        Assert.NotNull(StalledRule.Of("Exception", "Expired", new V1Condition { Type = "Ready", Status = "False", Reason = "Expired" }));
        Assert.NotNull(StalledRule.Of("Exception", "Rejected", new V1Condition { Type = "Ready", Status = "False", Reason = "Rejected" }));
        Assert.Null(StalledRule.Of("Exception", "Pending", new V1Condition { Type = "Ready", Status = "False", Reason = "AwaitingApproval" }));
        Assert.NotNull(StalledRule.Of("DeploymentIntent", "AwaitingApproval", new V1Condition { Type = "Ready", Status = "False", Reason = "ExceptionExpired" }));
        Assert.Null(StalledRule.Of("DeploymentIntent", "AwaitingApproval", new V1Condition { Type = "Ready", Status = "False", Reason = "AwaitingException" }));
    }

    [Fact]
    public void ActiveThenNotApprovedAnyMore_IsRevoked_Loudly()
    {
        var d = ExceptionPlan.Decide(new(Exc(status: new(ExceptionPhase.Active, 1, "sam@acme.io", Now)), TenantWith(), NotApproved, Now));
        Assert.Equal(ExceptionPhase.Pending, d.Phase);
        // Revoked, and waiting again: the ask is appended only if this generation's is not on record (Once).
        Assert.Equal(["exception.revoked", ApprovalAskPlans.ExceptionAction], d.Audits.Select(a => a.Action));
        Assert.True(d.Audits[1].Once);
        Assert.True(Assert.Single(d.Notices).Warning);
    }

    // --- who may approve ---

    [Fact]
    public void OnlyASecurityReviewer_WhoIsNotOwnerAuthorOrAuthorOfACoveredIntent_Counts()
    {
        var exc = Exc();
        IReadOnlyList<DeploymentIntent> intents = [Intent("ian@acme.io"), Intent("carl@acme.io", OtherSha, "other")];
        (bool, string) Verdict(string approver) { var v = ExceptionApprovals.Judge(ApprovalOf(exc, approver), exc, intents, BindingsIn); return (v.Counts, v.Reason); }

        Assert.Equal((true, "Counts"), Verdict("sam@acme.io"));
        // An Approver or a WorkspaceAdmin is no SecurityReviewer.
        Assert.Equal((false, "NotAnApprover"), Verdict("carol@acme.io"));
        Assert.Equal((false, "NotAnApprover"), Verdict("alice@acme.io"));
        Assert.Contains("SecurityReviewer", ExceptionApprovals.Judge(ApprovalOf(exc, "carol@acme.io"), exc, intents, BindingsIn).Message);
        // Its owner and its author, though SecurityReviewers.
        Assert.Equal((false, "SelfApproval"), Verdict("dana@acme.io"));
        var byAuthor = Exc(author: "sam@acme.io");
        Assert.Equal("SelfApproval", ExceptionApprovals.Judge(ApprovalOf(byAuthor, "sam@acme.io"), byAuthor, intents, BindingsIn).Reason);
        // The author of an intent of the same digest; not of another digest.
        var intentAuthor = ExceptionApprovals.Judge(ApprovalOf(exc, "ian@acme.io"), exc, intents, BindingsIn);
        Assert.Equal((false, "SelfApproval"), (intentAuthor.Counts, intentAuthor.Reason));
        Assert.Contains("DeploymentIntent orders-2-1-0", intentAuthor.Message);
        Assert.Null(ExceptionApprovals.Conflict("carl@acme.io", exc, intents));
        // An intent written by a ServiceAccount: whoever can mint its token (an Operator of its namespace) is its author too.
        IReadOnlyList<DeploymentIntent> byBot = [Intent("system:serviceaccount:acme-dev:deployer")];
        IEnumerable<V1RoleBinding> WithOperator(string ns) => ns == Ns ? [.. Bindings, Bound("Operator", "sam@acme.io")] : [];
        var minter = ExceptionApprovals.Judge(ApprovalOf(exc, "sam@acme.io"), exc, byBot, WithOperator);
        Assert.Equal((false, "SelfApproval"), (minter.Counts, minter.Reason));
        Assert.True(ExceptionApprovals.Judge(ApprovalOf(exc, "sam@acme.io"), exc, byBot, BindingsIn).Counts);

        Assert.True(ExceptionApprovals.Evaluate(exc, [ApprovalOf(exc, "sam@acme.io")], intents, BindingsIn).Approved);
        Assert.False(ExceptionApprovals.Evaluate(exc, [ApprovalOf(exc, "ian@acme.io"), ApprovalOf(exc, "carol@acme.io", name: "b")], intents, BindingsIn).Approved);
        var rejected = ExceptionApprovals.Evaluate(exc, [ApprovalOf(exc, "sam@acme.io"), ApprovalOf(exc, "rick@acme.io", "reject", "b")], intents, BindingsIn);
        Assert.True(rejected.Rejected);
        // An Approval of an older generation does not count.
        var edited = Exc();
        edited.Metadata.Generation = 2;
        Assert.False(ExceptionApprovals.Evaluate(edited, [ApprovalOf(exc, "sam@acme.io")], intents, BindingsIn).Approved);
    }

    [Fact]
    public void ASecurityReviewer_IsNoCabApprover_UnlessAlsoAnApprover()
    {
        Assert.False(ApprovalPolicy.IsApprover("sam@acme.io", [], Bindings));
        Assert.True(ApprovalPolicy.IsApprover("rick@acme.io", [], Bindings));
        Assert.True(ExceptionApprovals.IsSecurityReviewer("sam@acme.io", [], Bindings));
        Assert.False(ExceptionApprovals.IsSecurityReviewer("alice@acme.io", [], Bindings));
        // A ServiceAccount is never one, however bound.
        Assert.False(ExceptionApprovals.IsSecurityReviewer("system:serviceaccount:acme-dev:bot", ["system:serviceaccounts"], [Bound("SecurityReviewer", "system:serviceaccount:acme-dev:bot")]));
        // The sixth role: reads everything but Secrets, creates Approvals (and, as every member, AccessRequests and BreakGlasses), writes nothing else.
        Assert.Contains("SecurityReviewer", WorkspaceRoles.Roles);
        var rules = WorkspaceRoles.Rules("SecurityReviewer");
        Assert.DoesNotContain(rules, r => r.Resources.Contains("secrets"));
        Assert.All(rules.Where(r => r.Verbs.Except(["get", "list", "watch"]).Any() && !r.Resources.SequenceEqual(["accessrequests"]) && !r.Resources.SequenceEqual(["breakglasses"])), r => Assert.Equal("controlplane.io approvals create", $"{string.Join(",", r.ApiGroups)} {string.Join(",", r.Resources)} {string.Join(",", r.Verbs)}"));
        Assert.Contains(rules, r => r.Resources.Contains("exceptions") && r.Verbs.Contains("list"));
        Assert.Same(ApprovableKinds.Exception, ApprovableKinds.Of("Exception"));
        Assert.Equal(1, ApprovableKinds.Exception.RequiredApprovals(Exc(), "prod"));
    }

    // --- what covers an intent ---

    static ExceptionInForce InForce(SecurityException e, bool active = true) => new(e, active);

    static Finding Vuln(string id, string severity) => new(FindingType.Vulnerability, id, severity, "spec");

    [Fact]
    public void ActiveException_OfTheDigest_CoversTheNamedFinding_UpToItsSeverity()
    {
        IReadOnlyList<Finding> findings = [Vuln("CVE-2025-12345", "High"), Vuln("CVE-2025-1", "Medium")];
        var covered = ExceptionCoverage.Of(findings, Sha, [InForce(Exc())]);
        Assert.True(covered.Complete);
        Assert.Equal(("CVE-2025-12345", "waiver"), (Assert.Single(covered.Covered).Finding.Id, covered.Covered[0].Exception));
        Assert.Equal(["waiver: CVE-2025-12345"], covered.InUse.Select(u => $"{u.Exception}: {string.Join(",", u.Covers)}"));
        Assert.Equal(Created.AddDays(30), covered.EarliestExpiry);

        // A Critical finding is beyond a High exception.
        var critical = ExceptionCoverage.Of([Vuln("CVE-2025-12345", "Critical")], Sha, [InForce(Exc())]);
        Assert.False(critical.Complete);
        Assert.Contains("only up to High", Assert.Single(critical.Hints));
        // Another digest, another type, an id not named, not active: uncovered.
        Assert.False(ExceptionCoverage.Of(findings, OtherSha, [InForce(Exc())]).Complete);
        Assert.False(ExceptionCoverage.Of(findings, Sha, [InForce(Exc(type: "unsignedPackage"))]).Complete);
        Assert.False(ExceptionCoverage.Of(findings, Sha, [InForce(Exc(covers: ["CVE-2025-99999"]))]).Complete);
        var pending = ExceptionCoverage.Of(findings, Sha, [InForce(Exc(), active: false)]);
        Assert.False(pending.Complete);
        Assert.Contains("not Active", Assert.Single(pending.Hints));
        // Nothing serious: nothing to cover.
        Assert.Empty(ExceptionCoverage.Of([Vuln("CVE-2025-1", "Medium")], Sha, []).Serious);
    }

    [Fact]
    public void EveryFindingNeedsCover_UnsignedToo_AndOfSeveral_TheOneExpiringLastIsUsed()
    {
        IReadOnlyList<Finding> findings = [Vuln("CVE-2025-12345", "High"), new(FindingType.UnsignedPackage, "registry.example/orders", "High", "signature")];
        var onlyCve = ExceptionCoverage.Of(findings, Sha, [InForce(Exc())]);
        Assert.Equal("registry.example/orders", Assert.Single(onlyCve.Uncovered).Id);
        var both = ExceptionCoverage.Of(findings, Sha,
            [InForce(Exc()), InForce(Exc("late", expires: Created.AddDays(60))), InForce(Exc("unsigned", "unsignedPackage", covers: ["registry.example/orders"], expires: Created.AddDays(10)))]);
        Assert.True(both.Complete);
        Assert.Equal("late", both.Covered.Single(c => c.Finding.Type == FindingType.Vulnerability).Exception);
        Assert.Equal(Created.AddDays(10), both.EarliestExpiry);
    }

    [Fact]
    public void AnExceptionOfAnotherNamespace_OrExpiredNow_NeverCounts()
    {
        // The intent reconciler lists Exceptions of its own namespace only; one that expired a second ago is not Active however its status reads.
        var expired = Exc(expires: Now, status: new(ExceptionPhase.Active, 1, "sam@acme.io", Created));
        var active = ExceptionPlan.Counts(new(expired, TenantWith(), Approved("sam@acme.io"), Now));
        Assert.False(ExceptionCoverage.Of([Vuln("CVE-2025-12345", "High")], Sha, [InForce(expired, active)]).Complete);
    }

    // --- telemetry ---

    [Fact]
    public void Metrics_CountActive_Expiring_AndExpiringInUse_ByTenantAndWorkspace()
    {
        var now = Created.AddDays(25);
        var soon = Exc("soon", status: new(ExceptionPhase.Active)); // expires day 30: within 7 days
        var later = Exc("later", expires: Created.AddDays(80), status: new(ExceptionPhase.Active));
        var pending = Exc("pending", expires: Created.AddDays(26), status: new(ExceptionPhase.Pending));
        var running = Intent("bob@acme.io");
        running.Status = new DeploymentIntentStatus { Phase = IntentPhase.InProgress, Exceptions = [new IntentException { Name = "soon", Covers = ["CVE-2025-12345"] }] };
        var counts = ExceptionMetrics.Count([soon, later, pending], [running], _ => "acme", now);
        Assert.Equal((2, 1, 1), counts[("acme", Ns)]);
        // A completed intent no longer uses it.
        running.Status.Phase = IntentPhase.Completed;
        Assert.Equal((2, 1, 0), ExceptionMetrics.Count([soon, later, pending], [running], _ => "acme", now)[("acme", Ns)]);
    }
}
