using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The BreakGlass kind's pure parts: its rules under the tenant's break-glass policy, who may invoke it, its life (BreakGlassPlan), its RoleBinding, who reviews it.</summary>
public sealed class BreakGlassUnitTests
{
    const string Ns = "acme-prod";
    const string Alice = "alice@acme.io";
    const string Carol = "carol@acme.io";
    static readonly DateTime Created = new(2026, 12, 7, 9, 0, 0, DateTimeKind.Utc);
    static readonly DateTime Now = Created.AddSeconds(5);
    static readonly TimeSpan Window = TimeSpan.FromHours(24);

    static BreakGlass Bg(string name = "payments-down", string role = "WorkspaceAdmin", string? duration = "30m", string invoker = Alice, string? match = "user:" + Alice,
        BreakGlassStatus? status = null, bool end = false, bool deleting = false, DateTime? created = null, string justification = "Payments are down and the database pods need a restart")
    {
        var annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = invoker };
        if (match is not null) annotations[ApiGroup.BreakGlassInvokerMatchAnnotation] = match;
        return new()
        {
            Metadata = new V1ObjectMeta
            {
                Name = name, NamespaceProperty = Ns, Uid = "uid-" + name, Generation = 1, CreationTimestamp = created ?? Created,
                DeletionTimestamp = deleting ? Now : null, Annotations = annotations,
            },
            Spec = new BreakGlassSpec { Role = role, Duration = duration, Justification = justification, Incident = "INC-1234", End = end ? true : null },
            Status = status,
        };
    }

    static TenantBreakGlassPolicy Policy(string role = "WorkspaceAdmin", string maxDuration = "1h", string[]? users = null, string[]? groups = null) => new()
    {
        Role = role, MaxDuration = maxDuration, Invokers = new BreakGlassInvokers { Users = [.. users ?? [Alice]], Groups = [.. groups ?? ["oncall"]] },
    };

    static Tenant TenantWith(TenantBreakGlassPolicy? policy) => new()
    {
        Metadata = new V1ObjectMeta { Name = "acme" },
        Spec = new TenantSpec { Region = "eu", AccessPolicy = policy is null ? null : new TenantAccessPolicy { BreakGlass = policy } },
    };

    static readonly Tenant Acme = TenantWith(Policy());
    static readonly ApprovalState NoReview = new(false, false, 1, [], [], "0 of 1 approval(s) for generation 1");
    static ApprovalState ReviewedBy(string who) => new(true, false, 1, [who], [], "approved by " + who);

    static BreakGlassDecision Decide(BreakGlass b, ApprovalState? review = null, bool binding = false, DateTime? now = null, Tenant? tenant = null,
        IReadOnlyList<BreakGlass>? others = null, TimeSpan? window = null, bool noTenant = false) =>
        BreakGlassPlan.Decide(new BreakGlassFacts(b, noTenant ? null : tenant ?? Acme, others ?? [], review ?? NoReview, binding, now ?? Now, window ?? Window));

    /// <summary>The status a decision wrote, with its conditions, as the next pass reads it.</summary>
    static BreakGlassStatus Written(BreakGlassDecision d)
    {
        d.Status.Conditions = d.Conditions.Select(c => new V1Condition { Type = c.Type, Status = c.Status == true ? "True" : "False", Reason = c.Reason, Message = c.Message }).ToList();
        return d.Status;
    }

    static BreakGlassStatus Granted() => Written(Decide(Bg()));

    static bool Is(BreakGlassDecision d, string type) => d.Conditions.Single(c => c.Type == type).Status == true;

    // --- the rules (admission and reconcile) ---

    [Fact]
    public void AValidInvocation_HasNoProblems() => Assert.Empty(BreakGlassRules.Problems(Bg().Spec, Acme));

    [Fact]
    public void WithoutAPolicy_BreakGlassIsDisabled_NamingThePolicyField()
    {
        var problem = Assert.Single(BreakGlassRules.Problems(Bg().Spec, TenantWith(null)));
        Assert.StartsWith("spec.accessPolicy.breakGlass:", problem);
        Assert.Contains("disabled", problem);
    }

    [Fact]
    public void ARoleOtherThanTheDeclaredEmergencyRole_IsRefused() =>
        Assert.Contains(BreakGlassRules.Problems(Bg(role: "Operator").Spec, Acme), p => p.StartsWith("spec.role:") && p.Contains("(WorkspaceAdmin)"));

    [Theory]
    [InlineData("1h", "1h", true)]
    [InlineData(null, "1h", true)]
    [InlineData("61m", "1h", false)]
    [InlineData("2h", "1h", false)]
    [InlineData("30m", "15m", false)]
    [InlineData("15m", "15m", true)]
    [InlineData("2h", "3h", false)] // a tenant cannot raise the maximum above 1h
    [InlineData("5s", "1h", false)]
    public void TheDuration_IsAtMostTheTenantsMaximum_NeverOverAnHour(string? duration, string max, bool ok)
    {
        var problems = BreakGlassRules.Problems(Bg(duration: duration).Spec, TenantWith(Policy(maxDuration: max)));
        Assert.Equal(ok, !problems.Any(p => p.StartsWith("spec.duration:")));
    }

    [Fact]
    public void AJustificationWithoutSubstance_IsRefused_AsForAccessRequests() =>
        Assert.Contains(BreakGlassRules.Problems(Bg(justification: "fix it fix it fix it fix it").Spec, Acme), p => p.StartsWith("spec.justification:"));

    [Fact]
    public void ATenantPolicy_ThatStretchesOrNamesNoPerson_IsRefused_NamingTheField()
    {
        Assert.Empty(BreakGlassRules.PolicyProblems(Policy()));
        Assert.Contains(BreakGlassRules.PolicyProblems(Policy(maxDuration: "2h")), p => p.StartsWith("spec.accessPolicy.breakGlass.maxDuration:"));
        Assert.Contains(BreakGlassRules.PolicyProblems(Policy(users: [], groups: [])), p => p.StartsWith("spec.accessPolicy.breakGlass.invokers:"));
        Assert.Contains(BreakGlassRules.PolicyProblems(Policy(users: ["system:serviceaccount:acme-prod:ci"])), p => p.StartsWith("spec.accessPolicy.breakGlass.invokers.users:"));
        Assert.Contains(BreakGlassRules.PolicyProblems(Policy(groups: ["system:authenticated"])), p => p.StartsWith("spec.accessPolicy.breakGlass.invokers.groups:"));
    }

    [Fact]
    public void TheInvoker_IsMatchedByUserOrByGroup_NeverBySystemGroups()
    {
        var policy = Policy(users: [Alice], groups: ["oncall", "system:authenticated"]);
        Assert.Equal("user:" + Alice, BreakGlassRules.InvokerMatch(policy, Alice, ["oncall"]));
        Assert.Equal("group:oncall", BreakGlassRules.InvokerMatch(policy, "dave@acme.io", ["devs", "oncall"]));
        Assert.Null(BreakGlassRules.InvokerMatch(policy, "mallory@acme.io", ["devs"]));
        Assert.Null(BreakGlassRules.InvokerMatch(policy, "mallory@acme.io", ["system:authenticated"]));
        Assert.Null(BreakGlassRules.InvokerMatch(null, Alice, []));
    }

    [Fact]
    public void TheStampedMatch_HoldsOnlyWhileThePolicyStillNamesIt()
    {
        var policy = Policy(users: [Alice], groups: ["oncall"]);
        Assert.True(BreakGlassRules.MatchHolds(policy, Alice, "user:" + Alice));
        // A user entry names the invoker itself: another's name is no match.
        Assert.False(BreakGlassRules.MatchHolds(policy, "mallory@acme.io", "user:" + Alice));
        Assert.True(BreakGlassRules.MatchHolds(policy, "dave@acme.io", "group:oncall"));
        Assert.False(BreakGlassRules.MatchHolds(Policy(groups: ["sre"]), "dave@acme.io", "group:oncall"));
        Assert.False(BreakGlassRules.MatchHolds(policy, Alice, null));
        Assert.False(BreakGlassRules.MatchHolds(policy, Alice, "anything"));
    }

    // --- the plan ---

    [Fact]
    public void AValidInvocation_IsGrantedAtOnce_Loudly_TimesRecorded_RecheckAtExpiry()
    {
        var d = Decide(Bg());
        Assert.Equal(BreakGlassPhase.Active, d.Phase);
        Assert.Equal(BindingAction.Ensure, d.Binding);
        Assert.Equal((Now, Now.AddMinutes(30), Now + Window), (d.Status.GrantedAt, d.Status.ExpiresAt, d.Status.ReviewDeadline));
        Assert.Equal((Alice, "controlplane-breakglass-payments-down"), (d.Status.Invoker, d.Status.RoleBinding));
        var audit = Assert.Single(d.Audits);
        Assert.Equal(("breakglass.invoked", "security"), (audit.Action, audit.Severity));
        Assert.Equal("INC-1234", audit.Details["incident"]!.GetValue<string>());
        Assert.True(Assert.Single(d.Notices).Warning);
        Assert.True(Is(d, BreakGlassConditions.Ready));
        Assert.False(Is(d, BreakGlassConditions.Reviewed));
        Assert.False(Is(d, BreakGlassConditions.ReviewOverdue));
        Assert.Equal(TimeSpan.FromMinutes(30), d.RecheckIn);
    }

    [Fact]
    public void WithoutADuration_TheGrantLastsAnHour() => Assert.Equal(Now.AddHours(1), Decide(Bg(duration: null)).Status.ExpiresAt);

    [Fact]
    public void Active_WithItsBinding_BeforeExpiry_IsANoOp()
    {
        var d = Decide(Bg(status: Granted()), binding: true, now: Now.AddMinutes(10));
        Assert.Equal((BreakGlassPhase.Active, BindingAction.None), (d.Phase, d.Binding));
        Assert.Empty(d.Audits);
        Assert.Empty(d.Notices);
        Assert.Equal(Now.AddMinutes(30), d.Status.ExpiresAt);
        Assert.Equal(TimeSpan.FromMinutes(20), d.RecheckIn);
    }

    [Fact]
    public void AtTheRecordedExpiry_ItExpires_BindingDeleted_Audited_ThenRecheckAtTheReviewDeadline()
    {
        var d = Decide(Bg(status: Granted()), binding: true, now: Now.AddMinutes(30));
        Assert.Equal((BreakGlassPhase.Expired, BindingAction.Delete), (d.Phase, d.Binding));
        Assert.Equal(("breakglass.expired", "security"), (Assert.Single(d.Audits).Action, d.Audits[0].Severity));
        Assert.Null(d.Status.RoleBinding);
        Assert.Equal(Now + Window - Now.AddMinutes(30), d.RecheckIn);
    }

    [Fact]
    public void TheExpiry_IsTheRecordedOne_NotRecomputedFromTheSpec()
    {
        var status = Granted();
        var stretched = Bg(duration: "1h", status: status);
        Assert.Equal(BreakGlassPhase.Expired, Decide(stretched, binding: true, now: Now.AddMinutes(31)).Phase);
    }

    [Fact]
    public void AfterARestart_LongPastExpiry_ItExpiresOnTheFirstPass()
    {
        var d = Decide(Bg(status: Granted()), binding: true, now: Now.AddHours(5));
        Assert.Equal((BreakGlassPhase.Expired, BindingAction.Delete), (d.Phase, d.Binding));
        Assert.Equal(Now.AddHours(5), d.Status.EndedAt);
    }

    [Fact]
    public void End_EndsItEarly_Audited()
    {
        var d = Decide(Bg(status: Granted(), end: true), binding: true, now: Now.AddMinutes(5));
        Assert.Equal((BreakGlassPhase.Ended, BindingAction.Delete, BreakGlassReasons.Ended), (d.Phase, d.Binding, d.Conditions[0].Reason));
        Assert.Equal("breakglass.ended", Assert.Single(d.Audits).Action);
    }

    [Fact]
    public void Deleting_EndsIt_Audited() =>
        Assert.Equal(("breakglass.ended", BindingAction.Delete), (Assert.Single(Decide(Bg(status: Granted(), deleting: true), binding: true).Audits).Action, Decide(Bg(status: Granted(), deleting: true), binding: true).Binding));

    [Fact]
    public void ThePolicyRemovedMidGrant_EndsIt_PolicyWithdrawn()
    {
        foreach (var tenant in new[] { TenantWith(null), TenantWith(Policy(users: [], groups: [])), TenantWith(Policy(role: "Operator")) })
        {
            var d = Decide(Bg(status: Granted()), binding: true, now: Now.AddMinutes(5), tenant: tenant);
            Assert.Equal((BreakGlassPhase.Ended, BindingAction.Delete, BreakGlassReasons.PolicyWithdrawn), (d.Phase, d.Binding, d.Conditions[0].Reason));
        }
    }

    [Fact]
    public void AnEndedBreakGlass_IsNeverGrantedAgain_AndALingeringBindingGoes()
    {
        var ended = Written(Decide(Bg(status: Granted()), binding: true, now: Now.AddMinutes(30)));
        var d = Decide(Bg(status: ended), binding: true, now: Now.AddMinutes(31));
        Assert.Equal((BreakGlassPhase.Expired, BindingAction.Delete), (d.Phase, d.Binding));
        Assert.Empty(d.Audits);
    }

    [Fact]
    public void AReviewInTime_MarksItReviewed_AuditedOnce_NeverOverdue()
    {
        var d = Decide(Bg(status: Granted()), ReviewedBy(Carol), binding: true, now: Now.AddMinutes(40));
        Assert.True(Is(d, BreakGlassConditions.Reviewed));
        Assert.False(Is(d, BreakGlassConditions.ReviewOverdue));
        Assert.Equal((Carol, Now.AddMinutes(40)), (d.Status.ReviewedBy, d.Status.ReviewedAt));
        var audit = Assert.Single(d.Audits, a => a.Action == "breakglass.reviewed");
        Assert.False(audit.Details["late"]!.GetValue<bool>());
        // The next pass: nothing new.
        var again = Decide(Bg(status: Written(d)), ReviewedBy(Carol), now: Now.AddHours(30));
        Assert.Empty(again.Audits);
        Assert.False(Is(again, BreakGlassConditions.ReviewOverdue));
        Assert.Null(again.RecheckIn);
    }

    [Fact]
    public void NoReviewByTheDeadline_IsOverdue_AuditedOnce()
    {
        var expired = Written(Decide(Bg(status: Granted()), binding: true, now: Now.AddMinutes(30)));
        var d = Decide(Bg(status: expired), now: Now + Window);
        Assert.True(Is(d, BreakGlassConditions.ReviewOverdue));
        Assert.Equal(("breakglass.review_overdue", "security"), (Assert.Single(d.Audits).Action, d.Audits[0].Severity));
        Assert.True(Assert.Single(d.Notices).Warning);
        var again = Decide(Bg(status: Written(d)), now: Now + Window + TimeSpan.FromHours(1));
        Assert.True(Is(again, BreakGlassConditions.ReviewOverdue));
        Assert.Empty(again.Audits);
        Assert.Empty(again.Notices);
    }

    [Fact]
    public void ALateReview_ClearsOverdue_AndTheAuditSaysItWasLate()
    {
        var expired = Written(Decide(Bg(status: Granted()), binding: true, now: Now.AddMinutes(30)));
        var overdue = Written(Decide(Bg(status: expired), now: Now + Window));
        var d = Decide(Bg(status: overdue), ReviewedBy(Carol), now: Now + Window + TimeSpan.FromHours(2));
        Assert.False(Is(d, BreakGlassConditions.ReviewOverdue));
        Assert.True(Is(d, BreakGlassConditions.Reviewed));
        Assert.Equal(BreakGlassReasons.ReviewedLate, d.Conditions.Single(c => c.Type == BreakGlassConditions.Reviewed).Reason);
        Assert.True(Assert.Single(d.Audits).Details["late"]!.GetValue<bool>());
    }

    [Fact]
    public void AReviewersReject_EndsAnActiveGrant()
    {
        var reject = new ApprovalState(false, true, 1, [], [Carol], "rejected by " + Carol);
        var d = Decide(Bg(status: Granted()), reject, binding: true, now: Now.AddMinutes(5));
        Assert.Equal((BreakGlassPhase.Ended, BindingAction.Delete), (d.Phase, d.Binding));
        Assert.Contains(d.Audits, a => a.Action == "breakglass.reviewed" && a.Details["decision"]!.GetValue<string>() == "reject");
    }

    [Fact]
    public void ASecondInvocation_WhileOneIsActive_IsRefused_AlreadyActive()
    {
        var active = Bg(name: "first", status: Granted());
        var d = Decide(Bg(name: "second", created: Created.AddMinutes(1)), others: [active], now: Now.AddMinutes(2));
        Assert.Equal((BreakGlassPhase.Refused, BreakGlassReasons.AlreadyActive, BindingAction.None), (d.Phase, d.Conditions[0].Reason, d.Binding));
        Assert.Equal("breakglass.refused", Assert.Single(d.Audits).Action);
        Assert.NotNull(StalledRule.Of(BreakGlass.KubeKind, "Refused", new V1Condition { Type = "Ready", Status = "False", Reason = d.Conditions[0].Reason, Message = "m" }));
    }

    [Fact]
    public void TwoCreatedAtOnce_OnlyTheOldestIsGranted()
    {
        var older = Bg(name: "b-first", created: Created);
        var younger = Bg(name: "a-second", created: Created.AddSeconds(1));
        Assert.Equal(BreakGlassPhase.Active, Decide(older, others: [younger]).Phase);
        Assert.Equal(BreakGlassPhase.Refused, Decide(younger, others: [older]).Phase);
        // Same second: the name decides, the same way on both sides.
        var x = Bg(name: "x", created: Created);
        var y = Bg(name: "y", created: Created);
        Assert.Equal((BreakGlassPhase.Active, BreakGlassPhase.Refused), (Decide(x, others: [y]).Phase, Decide(y, others: [x]).Phase));
        // An expired or refused sibling blocks nothing.
        var expired = Bg(name: "old", status: Written(Decide(Bg(name: "old", status: Granted()), now: Now.AddHours(2))));
        Assert.Equal(BreakGlassPhase.Active, Decide(Bg(name: "new"), others: [expired], now: Now.AddHours(3)).Phase);
    }

    [Theory]
    [InlineData(null, BreakGlassReasons.NotAnInvoker)]
    [InlineData("user:mallory@acme.io", BreakGlassReasons.NotAnInvoker)]
    [InlineData("user:" + Alice, BreakGlassReasons.NotAnInvoker)] // the forged user entry of someone else
    public void AnInvokerThePolicyDoesNotName_IsRefused(string? match, string reason)
    {
        var d = Decide(Bg(invoker: "mallory@acme.io", match: match));
        Assert.Equal((BreakGlassPhase.Refused, reason, BindingAction.None), (d.Phase, d.Conditions[0].Reason, d.Binding));
        Assert.Null(d.Status.GrantedAt);
        Assert.Equal(BreakGlassReasons.NotGranted, d.Conditions.Single(c => c.Type == BreakGlassConditions.ReviewOverdue).Reason);
    }

    [Fact]
    public void RefusedOtherwise_DisabledPolicyRoleServiceAccountWorkspace()
    {
        Assert.Equal(BreakGlassReasons.BreakGlassDisabled, Decide(Bg(), tenant: TenantWith(null)).Conditions[0].Reason);
        Assert.Equal(BreakGlassReasons.PolicyViolation, Decide(Bg(role: "Operator")).Conditions[0].Reason);
        Assert.Equal(BreakGlassReasons.PolicyViolation, Decide(Bg(duration: "2h")).Conditions[0].Reason);
        Assert.Equal(BreakGlassReasons.NotAPerson, Decide(Bg(invoker: "system:serviceaccount:acme-prod:ci", match: "user:system:serviceaccount:acme-prod:ci")).Conditions[0].Reason);
        Assert.Equal(BreakGlassReasons.NotInAWorkspace, Decide(Bg(), noTenant: true).Conditions[0].Reason);
        Assert.Equal(BreakGlassReasons.PolicyViolation, Decide(Bg(name: new string('a', 230))).Conditions[0].Reason);
    }

    [Fact]
    public void Refused_WithABindingOfItsName_DeletesIt() =>
        Assert.Equal(BindingAction.Delete, Decide(Bg(role: "Operator"), binding: true).Binding);

    // --- its RoleBinding ---

    [Fact]
    public void TheBinding_GrantsTheEmergencyRoleToTheInvoker_OwnedByTheBreakGlass_WithItsExpiry()
    {
        var b = Bg();
        var rb = BreakGlassReconciler.Binding(b, Granted());
        Assert.Equal(("controlplane-breakglass-payments-down", Ns), (rb.Metadata.Name, rb.Metadata.NamespaceProperty));
        Assert.Equal(WorkspaceRoles.ClusterRoleName("WorkspaceAdmin"), rb.RoleRef.Name);
        Assert.Equal(("User", Alice), (Assert.Single(rb.Subjects).Kind, rb.Subjects[0].Name));
        Assert.Equal((BreakGlass.KubeKind, "uid-payments-down", true), (Assert.Single(rb.Metadata.OwnerReferences).Kind, rb.Metadata.OwnerReferences[0].Uid, rb.Metadata.OwnerReferences[0].Controller == true));
        Assert.Equal("2026-12-07T09:30:05Z", rb.Metadata.Annotations[GrantBindings.ExpiresAtAnnotation]);
        Assert.False(rb.Metadata.Labels.ContainsKey(ApiGroup.WorkspaceLabel));
        Assert.True(GrantBindings.IsOurs(rb, b));
        Assert.Equal([$"{Ns}/payments-down"], GrantBindings.OwnerOf(rb, BreakGlass.KubeKind));
        Assert.Empty(GrantBindings.OwnerOf(rb, AccessRequest.KubeKind));
    }

    // --- who reviews ---

    static Approval ReviewOf(BreakGlass target, string approver, string name, string[]? groups = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name, NamespaceProperty = Ns,
            Annotations = groups is null ? null : new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups(groups) },
        },
        Spec = new ApprovalSpec
        {
            Target = new ApprovalTarget { Kind = BreakGlass.KubeKind, Name = target.Metadata.Name }, Decision = "approve", Approver = approver,
            TargetGeneration = target.Metadata.Generation, TargetUID = target.Metadata.Uid,
        },
    };

    static V1RoleBinding Bound(string role, string[] users, string[]? groups = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = "rb-" + WorkspaceRoles.Kebab(role), NamespaceProperty = Ns },
        RoleRef = new V1RoleRef { Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(role) },
        Subjects = [.. users.Select(u => new Rbacv1Subject { Kind = "User", Name = u }), .. (groups ?? []).Select(g => new Rbacv1Subject { Kind = "Group", Name = g })],
    };

    static readonly V1RoleBinding[] Bindings =
    [
        Bound("Approver", [Alice, "bob@acme.io"], ["approvers"]), Bound("SecurityReviewer", ["sam@acme.io"]), Bound("WorkspaceAdmin", ["wanda@acme.io"]), Bound("Operator", ["olga@acme.io"]),
    ];

    static ApprovalState Review(BreakGlass b, params Approval[] approvals) => BreakGlassReview.Evaluate(b, approvals, _ => Bindings);

    [Fact]
    public void AnApproverWorkspaceAdminOrSecurityReviewer_Reviews_AnOperatorDoesNot()
    {
        var b = Bg();
        Assert.True(Review(b, ReviewOf(b, "bob@acme.io", "bob")).Approved);
        Assert.True(Review(b, ReviewOf(b, "sam@acme.io", "sam")).Approved);
        Assert.True(Review(b, ReviewOf(b, "wanda@acme.io", "wanda")).Approved);
        Assert.False(Review(b, ReviewOf(b, "olga@acme.io", "olga")).Approved);
    }

    [Fact]
    public void TheInvoker_NeverReviews_DirectlyOrThroughAGroup()
    {
        var b = Bg();
        Assert.False(Review(b, ReviewOf(b, Alice, "self")).Approved);
        Assert.False(Review(b, ReviewOf(b, Alice, "self-group", ["approvers"])).Approved);
        // Someone else in the same group does.
        Assert.True(Review(b, ReviewOf(b, "gina@acme.io", "gina", ["approvers"])).Approved);
    }

    [Fact]
    public void BreakGlass_IsApprovable_OneReviewEverywhere_EndIsAControlField()
    {
        Assert.Same(ApprovableKinds.BreakGlass, ApprovableKinds.Of(BreakGlass.KubeKind));
        Assert.Equal(["end"], ApprovableKinds.BreakGlass.ControlFields);
        Assert.Equal(1, ApprovableKinds.BreakGlass.RequiredApprovals(Bg(), "prod"));
    }

    [Fact]
    public void EveryMember_MayCreateAndEndABreakGlass_OnlyAWorkspaceAdminDeletesOne()
    {
        foreach (var role in WorkspaceRoles.Roles)
        {
            var rules = WorkspaceRoles.Rules(role).Where(r => r.ApiGroups.Contains("controlplane.io") && r.Resources.Contains("breakglasses")).ToList();
            Assert.Contains(rules, r => r.Verbs.Contains("create") && r.Verbs.Contains("patch"));
            Assert.Equal(role == "WorkspaceAdmin", rules.Any(r => r.Verbs.Contains("delete") || r.Verbs.Contains("*")));
            Assert.DoesNotContain(WorkspaceRoles.Rules(role), r => r.Resources.Contains("breakglasses/status"));
        }
    }

    [Fact]
    public void TheGauges_CountActiveAndOverdue_PerWorkspace()
    {
        var active = Bg(name: "a", status: Granted());
        var overdue = Bg(name: "o", status: Written(Decide(Bg(name: "o", status: Written(Decide(Bg(name: "o", status: Granted()), now: Now.AddHours(2)))), now: Now + Window)));
        var counts = BreakGlassMetrics.Count([active, overdue], _ => "acme", Now.AddMinutes(1));
        Assert.Equal((1, 1), counts[("acme", Ns)]);
        Assert.Equal((0, 1), BreakGlassMetrics.Count([active, overdue], _ => "acme", Now.AddHours(1))[("acme", Ns)]);
    }
}
