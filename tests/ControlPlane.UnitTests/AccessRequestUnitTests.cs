using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The AccessRequest kind's pure parts: its spec rules under the tenant's access policy, its life (AccessRequestPlan), its RoleBinding, who may approve it.</summary>
public sealed class AccessRequestUnitTests
{
    const string Ns = "acme-dev";
    const string Alice = "alice@acme.io";
    static readonly DateTime Created = new(2026, 12, 7, 9, 0, 0, DateTimeKind.Utc);
    static readonly DateTime Now = Created.AddMinutes(10);

    static AccessRequest Req(string role = "Operator", string duration = "2h", string requester = Alice, AccessRequestStatus? status = null, bool revoke = false,
        bool deleting = false, string justification = "Investigate the failing payment batch job in production logs") => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "debug-payments", NamespaceProperty = Ns, Uid = "uid-req", Generation = 1, CreationTimestamp = Created,
            DeletionTimestamp = deleting ? Now : null,
            Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = requester },
        },
        Spec = new AccessRequestSpec { Role = role, Duration = duration, Justification = justification, Ticket = "OPS-1234", Revoke = revoke ? true : null },
        Status = status,
    };

    static Tenant TenantWith(string? maxRole = null, string? maxDuration = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = "acme" },
        Spec = new TenantSpec
        {
            Region = "eu",
            AccessPolicy = maxRole is null && maxDuration is null ? null : new TenantAccessPolicy { MaxRole = maxRole ?? "Operator", MaxDuration = maxDuration ?? "8h" },
        },
    };

    static ApprovalState Approved(params string[] by) => new(true, false, by.Length, by, [], "approved by " + string.Join(", ", by));
    static readonly ApprovalState NotApproved = new(false, false, 1, [], [], "0 of 1 approval(s) for generation 1");
    static readonly ApprovalState RejectedBy = new(false, true, 1, [], ["bob@acme.io"], "rejected by bob@acme.io");

    static AccessRequestDecision Decide(AccessRequest r, ApprovalState approval, bool binding = false, DateTime? now = null, Tenant? tenant = null) =>
        AccessRequestPlan.Decide(new AccessRequestFacts(r, tenant ?? TenantWith(), approval, binding, now ?? Now));

    /// <summary>The status the plan wrote when it granted at <see cref="Now"/>, with its conditions, as the next pass reads it.</summary>
    static AccessRequestStatus Granted(string duration = "2h")
    {
        var d = Decide(Req(duration: duration), Approved("bob@acme.io"));
        d.Status.Conditions = d.Conditions.Select(c => new V1Condition { Type = c.Type, Status = c.Status == true ? "True" : "False", Reason = c.Reason, Message = c.Message }).ToList();
        return d.Status;
    }

    // --- the spec rules (admission and reconcile) ---

    [Fact]
    public void AValidRequest_HasNoProblems() => Assert.Empty(AccessRequestRules.Problems(Req().Spec, TenantWith()));

    [Theory]
    [InlineData("WorkspaceAdmin")]
    [InlineData("IntegrationAdmin")]
    public void ARoleAboveTheDefaultMaximum_IsRefused_NamingTheField(string role)
    {
        var problem = Assert.Single(AccessRequestRules.Problems(Req(role: role).Spec, null));
        Assert.StartsWith("spec.role:", problem);
        Assert.Contains("maxRole (Operator)", problem);
    }

    [Fact]
    public void TheTenantsMaximumRole_Bounds_Both_Ways()
    {
        Assert.Empty(AccessRequestRules.Problems(Req(role: "WorkspaceAdmin").Spec, TenantWith(maxRole: "WorkspaceAdmin")));
        Assert.Contains(AccessRequestRules.Problems(Req(role: "Operator").Spec, TenantWith(maxRole: "Auditor")), p => p.StartsWith("spec.role:"));
        Assert.Empty(AccessRequestRules.Problems(Req(role: "Auditor").Spec, TenantWith(maxRole: "Auditor")));
    }

    [Fact]
    public void ANonRole_IsRefused() =>
        Assert.Contains(AccessRequestRules.Problems(Req(role: "ClusterAdmin").Spec, null), p => p.StartsWith("spec.role: \"ClusterAdmin\" is not a workspace role"));

    [Theory]
    [InlineData("8h", null, true)]
    [InlineData("8h1m", null, false)]
    [InlineData("2h", "1h", false)]
    [InlineData("1h", "1h", true)]
    [InlineData("5s", null, false)]
    [InlineData("8d", "30d", false)] // no tenant policy stretches a grant beyond 7d
    [InlineData("two hours", null, false)]
    public void TheDuration_IsBounded(string duration, string? tenantMax, bool ok)
    {
        var problems = AccessRequestRules.Problems(Req(duration: duration).Spec, tenantMax is null ? null : TenantWith(maxDuration: tenantMax));
        if (ok) Assert.Empty(problems);
        else Assert.StartsWith("spec.duration:", Assert.Single(problems));
    }

    [Theory]
    [InlineData("")]
    [InlineData("need access")]
    [InlineData("debug debug debug debug debug debug")]
    public void AJustification_WithoutSubstance_IsRefused(string justification) =>
        Assert.StartsWith("spec.justification:", Assert.Single(AccessRequestRules.Problems(Req(justification: justification).Spec, null)));

    // --- the plan ---

    [Fact]
    public void New_Unapproved_IsPending_AuditedOnce_NoBinding()
    {
        var d = Decide(Req(), NotApproved);
        Assert.Equal(AccessRequestPhase.Pending, d.Phase);
        Assert.Equal(BindingAction.None, d.Binding);
        Assert.Equal(Alice, d.Status.Requester);
        Assert.Equal("access.requested", Assert.Single(d.Audits).Action);
        Assert.Null(d.RecheckIn);
        // The next pass, with the Pending status recorded, audits nothing again.
        var again = Decide(Req(status: d.Status), NotApproved);
        Assert.Empty(again.Audits);
        Assert.Empty(again.Notices);
    }

    [Fact]
    public void Approved_IsActive_GrantTimesRecorded_BindingEnsured_RecheckAtExpiry()
    {
        var d = Decide(Req(status: new AccessRequestStatus { Phase = AccessRequestPhase.Pending }), Approved("bob@acme.io"));
        Assert.Equal(AccessRequestPhase.Active, d.Phase);
        Assert.Equal(Now, d.Status.GrantedAt);
        Assert.Equal(Now.AddHours(2), d.Status.ExpiresAt);
        Assert.Equal("bob@acme.io", d.Status.ApprovedBy);
        Assert.Equal("controlplane-access-debug-payments", d.Status.RoleBinding);
        Assert.Equal(BindingAction.Ensure, d.Binding);
        var audit = Assert.Single(d.Audits);
        Assert.Equal(("access.granted", "security"), (audit.Action, audit.Severity));
        Assert.Equal(TimeSpan.FromHours(2), d.RecheckIn);
        Assert.Contains(d.Conditions, c => c is { Type: "Ready", Status: true, Reason: AccessRequestReasons.Active });
    }

    [Fact]
    public void Active_WithItsBinding_BeforeExpiry_IsANoOp()
    {
        var granted = Granted();
        var later = Now.AddMinutes(30);
        var d = Decide(Req(status: granted), Approved("bob@acme.io"), binding: true, now: later);
        Assert.Equal(AccessRequestPhase.Active, d.Phase);
        Assert.Equal(BindingAction.None, d.Binding);
        Assert.Empty(d.Audits);
        Assert.Empty(d.Notices);
        // The recorded times are kept, not recomputed from now.
        Assert.Equal(granted.GrantedAt, d.Status.GrantedAt);
        Assert.Equal(granted.ExpiresAt, d.Status.ExpiresAt);
        Assert.Equal(granted.ExpiresAt - later, d.RecheckIn);
    }

    [Fact]
    public void Active_WhoseBindingWasDeletedByHand_GetsItBack() =>
        Assert.Equal(BindingAction.Ensure, Decide(Req(status: Granted()), Approved("bob@acme.io"), binding: false, now: Now.AddMinutes(5)).Binding);

    [Fact]
    public void AtTheRecordedExpiry_ItExpires_BindingDeleted_AccessExpiredAudited()
    {
        var granted = Granted();
        var d = Decide(Req(status: granted), Approved("bob@acme.io"), binding: true, now: granted.ExpiresAt!.Value);
        Assert.Equal(AccessRequestPhase.Expired, d.Phase);
        Assert.Equal(BindingAction.Delete, d.Binding);
        Assert.Equal("access.expired", Assert.Single(d.Audits).Action);
        Assert.Equal(granted.ExpiresAt, d.Status.EndedAt);
        Assert.Null(d.Status.RoleBinding);
        Assert.Null(d.RecheckIn);
        Assert.Contains(d.Conditions, c => c is { Type: "Ready", Status: false, Reason: AccessRequestReasons.Expired });
    }

    [Fact]
    public void TheExpiry_IsTheRecordedOne_NotRecomputedFromTheSpec()
    {
        // Granted for 1h; a spec that says 8h (an edit the webhook would refuse, stored anyway) does not stretch it.
        var granted = Granted("1h");
        var d = Decide(Req(duration: "8h", status: granted), Approved("bob@acme.io"), binding: true, now: Now.AddHours(1).AddSeconds(1));
        Assert.Equal(AccessRequestPhase.Expired, d.Phase);
    }

    [Fact]
    public void AfterARestart_LongPastExpiry_ItExpiresOnTheFirstPass()
    {
        var d = Decide(Req(status: Granted()), Approved("bob@acme.io"), binding: true, now: Now.AddDays(3));
        Assert.Equal((AccessRequestPhase.Expired, BindingAction.Delete), (d.Phase, d.Binding));
    }

    [Fact]
    public void Revoke_EndsAnActiveGrant_AccessRevokedAudited()
    {
        var d = Decide(Req(status: Granted(), revoke: true), Approved("bob@acme.io"), binding: true, now: Now.AddMinutes(20));
        Assert.Equal((AccessRequestPhase.Revoked, BindingAction.Delete), (d.Phase, d.Binding));
        var audit = Assert.Single(d.Audits);
        Assert.Equal(("access.revoked", "security"), (audit.Action, audit.Severity));
        Assert.True(Assert.Single(d.Notices).Warning);
    }

    [Fact]
    public void ATenantPolicyLoweredBelowAnActiveGrant_EndsIt_PolicyWithdrawn()
    {
        // Granted for 2h under the default policy (8h); the tenant then lowers maxDuration to 1h: the grant ends now.
        var d = Decide(Req(status: Granted("2h"), duration: "2h"), Approved("bob@acme.io"), binding: true, now: Now.AddMinutes(10), tenant: TenantWith(maxDuration: "1h"));
        Assert.Equal((AccessRequestPhase.Revoked, BindingAction.Delete), (d.Phase, d.Binding));
        Assert.Equal("access.revoked", Assert.Single(d.Audits).Action);
        Assert.Contains(d.Conditions, c => c is { Type: "Ready", Status: false, Reason: AccessRequestReasons.PolicyWithdrawn });
        // Under a policy that still allows it, nothing changes.
        Assert.Equal(AccessRequestPhase.Active, Decide(Req(status: Granted("2h"), duration: "2h"), Approved("bob@acme.io"), binding: true, now: Now.AddMinutes(10), tenant: TenantWith(maxDuration: "4h")).Phase);
    }

    [Fact]
    public void Deleting_AnActiveRequest_RevokesIt() =>
        Assert.Equal((AccessRequestPhase.Revoked, BindingAction.Delete, "access.revoked"),
            Decide(Req(status: Granted(), deleting: true), Approved("bob@acme.io"), binding: true) is var d ? (d.Phase, d.Binding, Assert.Single(d.Audits).Action) : default);

    [Fact]
    public void ACountingReject_EndsAnActiveGrant() =>
        Assert.Equal(AccessRequestPhase.Revoked, Decide(Req(status: Granted()), RejectedBy, binding: true).Phase);

    [Fact]
    public void AnExpiredRequest_IsNeverGrantedAgain_AndALingeringBindingGoes()
    {
        var expired = Decide(Req(status: Granted()), Approved("bob@acme.io"), binding: true, now: Now.AddHours(3)).Status;
        // New approvals arrive (a replay): still Expired, nothing audited, the binding (a failed delete) goes.
        var d = Decide(Req(status: expired), Approved("bob@acme.io", "carol@acme.io"), binding: true, now: Now.AddHours(4));
        Assert.Equal((AccessRequestPhase.Expired, BindingAction.Delete), (d.Phase, d.Binding));
        Assert.Empty(d.Audits);
        Assert.Null(d.RecheckIn);
        Assert.Equal(expired.EndedAt, d.Status.EndedAt);
    }

    [Fact]
    public void ARevokedRequest_CannotBeUnrevoked()
    {
        var revoked = Decide(Req(status: Granted(), revoke: true), Approved("bob@acme.io"), binding: true).Status;
        Assert.Equal(AccessRequestPhase.Revoked, Decide(Req(status: revoked, revoke: false), Approved("bob@acme.io")).Phase);
    }

    [Fact]
    public void RejectedByAnApprover_IsRejected_NoBinding()
    {
        var d = Decide(Req(status: new AccessRequestStatus { Phase = AccessRequestPhase.Pending }), RejectedBy);
        Assert.Equal((AccessRequestPhase.Rejected, BindingAction.None), (d.Phase, d.Binding));
        Assert.Equal("access.rejected", Assert.Single(d.Audits).Action);
    }

    [Fact]
    public void ARoleAboveTheTenantsMaximum_IsRejected_EvenApproved()
    {
        var d = Decide(Req(role: "WorkspaceAdmin"), Approved("bob@acme.io"));
        Assert.Equal(AccessRequestPhase.Rejected, d.Phase);
        Assert.Contains(d.Conditions, c => c is { Type: "Ready", Reason: AccessRequestReasons.PolicyViolation });
        Assert.Equal(BindingAction.None, d.Binding);
    }

    [Fact]
    public void AServiceAccountRequester_IsRejected() =>
        Assert.Equal(AccessRequestReasons.NotAPerson,
            Decide(Req(requester: "system:serviceaccount:acme-dev:ci"), Approved("bob@acme.io")).Conditions.Single(c => c.Type == "Ready").Reason);

    [Fact]
    public void NotInAWorkspace_IsRejected() =>
        Assert.Equal(AccessRequestReasons.NotInAWorkspace,
            AccessRequestPlan.Decide(new AccessRequestFacts(Req(), null, Approved("bob@acme.io"), false, Now)).Conditions.Single(c => c.Type == "Ready").Reason);

    [Fact]
    public void Pending_WithABindingOfItsName_DeletesIt() =>
        Assert.Equal(BindingAction.Delete, Decide(Req(), NotApproved, binding: true).Binding);

    [Fact]
    public void ANameTooLongForItsBinding_IsRejected_NamingTheField()
    {
        var r = Req();
        r.Metadata.Name = new string('a', 234);
        var d = Decide(r, Approved("bob@acme.io"));
        Assert.Equal(AccessRequestPhase.Rejected, d.Phase);
        Assert.StartsWith("metadata.name: at most 233 characters", d.Conditions.Single(c => c.Type == "Ready").Message);
        r.Metadata.Name = new string('a', 233);
        Assert.Equal(AccessRequestPhase.Active, Decide(r, Approved("bob@acme.io")).Phase);
    }

    // --- its RoleBinding ---

    [Fact]
    public void TheBinding_GrantsTheRoleToTheRequester_OwnedByTheRequest_WithItsExpiry()
    {
        var r = Req();
        var status = Granted();
        var rb = AccessRequestResources.Binding(r, status);
        Assert.Equal("controlplane-access-debug-payments", rb.Metadata.Name);
        Assert.Equal(Ns, rb.Metadata.NamespaceProperty);
        Assert.Equal(WorkspaceRoles.ClusterRoleName("Operator"), rb.RoleRef.Name);
        var subject = Assert.Single(rb.Subjects);
        Assert.Equal(("User", Alice), (subject.Kind, subject.Name));
        var owner = Assert.Single(rb.Metadata.OwnerReferences);
        Assert.Equal((AccessRequest.KubeKind, "uid-req", true), (owner.Kind, owner.Uid, owner.Controller == true));
        Assert.Equal("2026-12-07T11:10:00Z", rb.Metadata.Annotations[AccessRequestResources.ExpiresAtAnnotation]);
        // Not the workspace's label: the Workspace reconciler would delete it as a removed member's binding.
        Assert.False(rb.Metadata.Labels.ContainsKey(ApiGroup.WorkspaceLabel));
        Assert.Equal(ApiGroup.ManagedByValue, rb.Metadata.Labels[ApiGroup.ManagedByLabel]);
        Assert.True(AccessRequestResources.IsOurs(rb, r));
        Assert.Equal([$"{Ns}/debug-payments"], AccessRequestResources.OwnerOf(rb));
    }

    // --- who approves ---

    static Approval ApprovalBy(AccessRequest target, string approver, string name) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Ns },
        Spec = new ApprovalSpec
        {
            Target = new ApprovalTarget { Kind = AccessRequest.KubeKind, Name = target.Metadata.Name }, Decision = "approve", Approver = approver,
            TargetGeneration = target.Metadata.Generation, TargetUID = target.Metadata.Uid,
        },
    };

    static V1RoleBinding Bound(string role, params string[] users) => new()
    {
        Metadata = new V1ObjectMeta { Name = "rb-" + WorkspaceRoles.Kebab(role), NamespaceProperty = Ns },
        RoleRef = new V1RoleRef { Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(role) },
        Subjects = [.. users.Select(u => new Rbacv1Subject { Kind = "User", Name = u })],
    };

    static readonly V1RoleBinding[] Bindings = [Bound("Approver", Alice, "bob@acme.io", "carol@acme.io"), Bound("Operator", "olga@acme.io")];

    static ApprovalState Evaluate(AccessRequest r, string environment, params Approval[] approvals) =>
        ApprovalPolicy.Evaluate(r, environment, approvals, a => ApprovalPolicy.HoldsApproverRole(a, _ => Bindings), _ => Bindings);

    [Fact]
    public void TheRequester_NeverApprovesTheirOwnRequest_EvenHoldingApprover()
    {
        var r = Req();
        Assert.False(Evaluate(r, "dev", ApprovalBy(r, Alice, "self")).Approved);
        Assert.True(Evaluate(r, "dev", ApprovalBy(r, "bob@acme.io", "bob")).Approved);
    }

    [Fact]
    public void InProd_TwoDistinctApprovers_AreNeeded()
    {
        var r = Req();
        Assert.False(Evaluate(r, "prod", ApprovalBy(r, "bob@acme.io", "bob")).Approved);
        Assert.False(Evaluate(r, "prod", ApprovalBy(r, "bob@acme.io", "bob"), ApprovalBy(r, "bob@acme.io", "bob-again")).Approved);
        Assert.False(Evaluate(r, "prod", ApprovalBy(r, "bob@acme.io", "bob"), ApprovalBy(r, Alice, "self")).Approved);
        Assert.True(Evaluate(r, "prod", ApprovalBy(r, "bob@acme.io", "bob"), ApprovalBy(r, "carol@acme.io", "carol")).Approved);
    }

    [Fact]
    public void AnOperator_DoesNotApprove()
    {
        var r = Req();
        Assert.False(Evaluate(r, "dev", ApprovalBy(r, "olga@acme.io", "olga")).Approved);
    }

    [Fact]
    public void AccessRequest_IsApprovable_RevokeIsAControlField()
    {
        Assert.Same(ApprovableKinds.AccessRequest, ApprovableKinds.Of(AccessRequest.KubeKind));
        Assert.Equal(["revoke"], ApprovableKinds.AccessRequest.ControlFields);
        Assert.Equal(1, ApprovableKinds.AccessRequest.RequiredApprovals(Req(), "dev"));
        Assert.Equal(2, ApprovableKinds.AccessRequest.RequiredApprovals(Req(), "prod"));
    }

    [Fact]
    public void EveryMember_MayRequestAccess_InTheirWorkspace()
    {
        foreach (var role in WorkspaceRoles.Roles)
        {
            Assert.Contains(WorkspaceRoles.Rules(role), rule => rule.ApiGroups.Contains("controlplane.io") && rule.Resources.Contains("accessrequests") && rule.Verbs.Contains("create"));
            // Status is the operator's: no role writes accessrequests/status.
            Assert.DoesNotContain(WorkspaceRoles.Rules(role), rule => rule.Resources.Contains("accessrequests/status"));
        }
    }

    [Fact]
    public void TheActiveGrantsGauge_CountsActiveUnexpiredGrants_PerWorkspace()
    {
        var granted = Granted();
        AccessRequest Named(string name, AccessRequestStatus? status)
        {
            var r = Req(status: status);
            r.Metadata.Name = name;
            return r;
        }

        var requests = new[] { Named("a", granted), Named("b", granted), Named("pending", new AccessRequestStatus { Phase = AccessRequestPhase.Pending }) };
        Assert.Equal(2, AccessRequestMetrics.Count(requests, _ => "acme", Now.AddMinutes(1))[("acme", Ns)]);
        // Past the recorded expiry (before the reconciler's pass): no longer counted, the series stays at zero.
        Assert.Equal(0, AccessRequestMetrics.Count(requests, _ => "acme", granted.ExpiresAt!.Value)[("acme", Ns)]);
    }

    [Fact]
    public void EndedPhases_AreStalled() =>
        Assert.All(new[] { "Expired", "Revoked", "Rejected" }, phase =>
            Assert.NotNull(StalledRule.Of(AccessRequest.KubeKind, phase, new V1Condition { Type = "Ready", Status = "False", Reason = phase, Message = "m" })));
}
