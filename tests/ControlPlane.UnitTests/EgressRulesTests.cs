using System.Net;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>Issue 26, egress safety: which URLs a tenant's channel may name and which addresses a delivery may reach.</summary>
public sealed class EgressRulesTests
{
    static readonly EgressPolicy Policy = new()
    {
        UrlPrefixes = ["https://hooks.example.com/services/", "http://127.0.0.1:8080/", "https://10.1.2.3/in/", "https://[::1]:8443/"],
        AllowedHosts = ["events.pagerduty.com", "*.receivers.example.net", "siem.example.org:8443"],
    };

    [Theory]
    // IPv4
    [InlineData("0.0.0.0", AddressClass.Unspecified)]
    [InlineData("0.1.2.3", AddressClass.Unspecified)]
    [InlineData("127.0.0.1", AddressClass.Loopback)]
    [InlineData("127.255.255.254", AddressClass.Loopback)]
    [InlineData("10.0.0.1", AddressClass.Private)]
    [InlineData("172.16.0.1", AddressClass.Private)]
    [InlineData("172.31.255.255", AddressClass.Private)]
    [InlineData("172.32.0.1", AddressClass.Public)]
    [InlineData("172.15.255.255", AddressClass.Public)]
    [InlineData("192.168.1.1", AddressClass.Private)]
    [InlineData("100.64.0.1", AddressClass.SharedCgnat)]
    [InlineData("100.127.255.255", AddressClass.SharedCgnat)]
    [InlineData("100.128.0.1", AddressClass.Public)]
    [InlineData("100.63.255.255", AddressClass.Public)]
    [InlineData("169.254.169.254", AddressClass.LinkLocal)]
    [InlineData("169.254.0.1", AddressClass.LinkLocal)]
    [InlineData("224.0.0.1", AddressClass.Multicast)]
    [InlineData("239.255.255.250", AddressClass.Multicast)]
    [InlineData("255.255.255.255", AddressClass.Broadcast)]
    [InlineData("240.0.0.1", AddressClass.Reserved)]
    [InlineData("192.0.2.10", AddressClass.Reserved)]
    [InlineData("198.18.0.1", AddressClass.Reserved)]
    [InlineData("203.0.113.5", AddressClass.Reserved)]
    [InlineData("8.8.8.8", AddressClass.Public)]
    [InlineData("93.184.216.34", AddressClass.Public)]
    // IPv6
    [InlineData("::", AddressClass.Unspecified)]
    [InlineData("::1", AddressClass.Loopback)]
    [InlineData("fe80::1", AddressClass.LinkLocal)]
    [InlineData("febf::1", AddressClass.LinkLocal)]
    [InlineData("fec0::1", AddressClass.Private)]
    [InlineData("fc00::1", AddressClass.UniqueLocal)]
    [InlineData("fd00:ec2::254", AddressClass.UniqueLocal)]
    [InlineData("ff02::1", AddressClass.Multicast)]
    [InlineData("2001:db8::1", AddressClass.Reserved)]
    [InlineData("2001::1", AddressClass.Reserved)]
    [InlineData("100::1", AddressClass.Reserved)]
    [InlineData("2606:4700::1111", AddressClass.Public)]
    // IPv4 inside IPv6: what is reached is the IPv4
    [InlineData("::ffff:127.0.0.1", AddressClass.Loopback)]
    [InlineData("::ffff:169.254.169.254", AddressClass.LinkLocal)]
    [InlineData("::ffff:10.0.0.1", AddressClass.Private)]
    [InlineData("::ffff:8.8.8.8", AddressClass.Public)]
    [InlineData("::127.0.0.1", AddressClass.Loopback)]
    [InlineData("::8.8.8.8", AddressClass.Reserved)]
    [InlineData("64:ff9b::a9fe:a9fe", AddressClass.LinkLocal)]
    [InlineData("64:ff9b::808:808", AddressClass.Public)]
    [InlineData("64:ff9b:1::1", AddressClass.Private)]
    [InlineData("2002:7f00:1::1", AddressClass.Loopback)]
    [InlineData("2002:a9fe:a9fe::1", AddressClass.LinkLocal)]
    public void EveryAddress_IsClassified(string address, AddressClass expected) =>
        Assert.Equal(expected, EgressRules.Classify(IPAddress.Parse(address)));

    [Theory]
    [InlineData("127.0.0.1", false, false, false)]
    [InlineData("127.0.0.1", false, true, true)]
    [InlineData("::1", false, true, true)]
    [InlineData("10.0.0.1", false, false, false)]
    [InlineData("10.0.0.1", true, false, true)]
    [InlineData("100.64.1.1", true, false, true)]
    [InlineData("fd12::1", true, false, true)]
    [InlineData("10.0.0.1", false, true, false)] // loopback allowed is not private allowed
    [InlineData("127.0.0.1", true, false, false)] // nor the other way round
    // Never, whatever the settings: where the metadata service, the local host or nobody answers.
    [InlineData("169.254.169.254", true, true, false)]
    [InlineData("fe80::1", true, true, false)]
    [InlineData("0.0.0.0", true, true, false)]
    [InlineData("::", true, true, false)]
    [InlineData("224.0.0.1", true, true, false)]
    [InlineData("255.255.255.255", true, true, false)]
    [InlineData("240.0.0.1", true, true, false)]
    [InlineData("8.8.8.8", false, false, true)]
    public void AnAddress_IsReachableOnlyWhereItsClassIsAllowed(string address, bool allowPrivate, bool allowLoopback, bool reachable)
    {
        var policy = new EgressPolicy { AllowPrivateAddresses = allowPrivate, AllowLoopback = allowLoopback };
        var refusal = EgressRules.AddressRefusal(IPAddress.Parse(address), policy);
        Assert.Equal(reachable, refusal is null);
        if (refusal is not null) Assert.Contains(IPAddress.Parse(address).ToString(), refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void Refusals_NameTheSettingThatWouldAllow()
    {
        Assert.Contains("ControlPlane:NotificationAllowPrivateAddresses is false", EgressRules.AddressRefusal(IPAddress.Parse("10.0.0.1"), new EgressPolicy()));
        Assert.Contains("ControlPlane:NotificationAllowLoopback is false", EgressRules.AddressRefusal(IPAddress.Parse("127.0.0.1"), new EgressPolicy()));
        Assert.Contains("never reachable", EgressRules.AddressRefusal(IPAddress.Parse("169.254.169.254"), new EgressPolicy { AllowPrivateAddresses = true, AllowLoopback = true }));
    }

    [Theory]
    [InlineData("https://hooks.example.com/services/T1/B2/xyz")]
    [InlineData("https://HOOKS.example.com/services/a")]
    [InlineData("https://events.pagerduty.com/v2/enqueue")]
    [InlineData("https://a.receivers.example.net/hook")]
    [InlineData("https://a.b.receivers.example.net/")]
    [InlineData("https://siem.example.org:8443/stream")]
    public void AUrl_UnderAPrefixOrAnAllowedHost_IsAllowed(string url)
    {
        var decision = EgressRules.Check("spec.url", url, Policy);
        Assert.True(decision.Allowed, decision.Refusal);
        Assert.Equal(new Uri(url), decision.Target);
    }

    [Theory]
    [InlineData(null, "a URL is required")]
    [InlineData("", "a URL is required")]
    [InlineData("hooks.example.com/services/x", "not an absolute URL")]
    [InlineData("/services/x", "not an absolute URL")]
    [InlineData("ftp://hooks.example.com/services/x", "scheme \"ftp\" is not allowed")]
    [InlineData("file:///etc/passwd", "not an absolute URL with a host")]
    [InlineData("http://hooks.example.com/services/x", "must use https")]
    [InlineData("https://user:pw@hooks.example.com/services/x", "must not carry user info")]
    [InlineData("https://hooks.example.com@evil.example/services/x", "must not carry user info")]
    [InlineData("https://hooks.example.com\\@evil.example/services/", "backslash")]
    [InlineData("https://hooks.example.com/services/\nx", "control character")]
    [InlineData("https://hooks.example.com /services/", "whitespace")]
    [InlineData("https://hooks.example.com.evil.example/services/x", "is not under ControlPlane:NotificationUrlPrefixes")]
    [InlineData("https://hooks.example.com:444/services/x", "is not under ControlPlane:NotificationUrlPrefixes")]
    [InlineData("https://hooks.example.com/servicesx", "is not under ControlPlane:NotificationUrlPrefixes")]
    [InlineData("https://hooks.example.com/services/../admin", "is not under ControlPlane:NotificationUrlPrefixes")]
    [InlineData("https://receivers.example.net/", "is not under")] // "*.domain" is not the domain itself
    [InlineData("https://evilreceivers.example.net/", "is not under")]
    [InlineData("https://events.pagerduty.com:8443/v2/enqueue", "is not under")] // a bare host: the default port only
    [InlineData("https://siem.example.org/stream", "is not under")]
    public void AUrl_BreakingARule_IsRefusedNamingTheFieldAndWhy(string? url, string why)
    {
        var decision = EgressRules.Check("spec.url", url, Policy);
        Assert.False(decision.Allowed);
        Assert.Null(decision.Target);
        Assert.StartsWith("spec.url: ", decision.Refusal, StringComparison.Ordinal);
        Assert.Contains(why, decision.Refusal, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://127.0.0.1/x", "loopback")]
    [InlineData("https://[::1]:8443/x", "loopback")]
    [InlineData("https://localhost/x", "localhost")]
    [InlineData("https://api.localhost/x", "localhost")]
    [InlineData("https://169.254.169.254/latest/meta-data/", "link-local")]
    [InlineData("https://[fe80::1]/x", "link-local")]
    [InlineData("https://10.1.2.3/in/x", "private")]
    [InlineData("https://[fd00:ec2::254]/x", "unique-local")]
    [InlineData("https://[::ffff:169.254.169.254]/x", "link-local")]
    [InlineData("https://[::ffff:127.0.0.1]/x", "loopback")]
    [InlineData("https://0.0.0.0/x", "unspecified")]
    [InlineData("https://0/x", "unspecified")]
    [InlineData("https://2130706433/x", "loopback")] // 127.0.0.1 as one decimal number
    [InlineData("https://0x7f.1/x", "loopback")] // and in hex with a short form
    [InlineData("https://017700000001/x", "loopback")] // and in octal
    [InlineData("https://224.0.0.1/x", "multicast")]
    [InlineData("https://255.255.255.255/x", "broadcast")]
    [InlineData("https://100.64.0.1/x", "CGNAT")]
    public void AnAddressLiteral_IsRefusedByItsClass_WhateverTheLists(string url, string why)
    {
        // Even listed by the platform: the lists say where, the classes say what can be reached at all.
        var everywhere = Policy with { UrlPrefixes = [.. Policy.UrlPrefixes, url] };
        var decision = EgressRules.Check("spec.url", url, everywhere);
        Assert.False(decision.Allowed, url);
        Assert.Contains(why, decision.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void Loopback_OverHttp_OnlyWhereLoopbackIsAllowed()
    {
        Assert.Contains("must use https", EgressRules.Check("spec.url", "http://127.0.0.1:8080/hook", Policy).Refusal);
        var tests = Policy with { AllowLoopback = true };
        Assert.True(EgressRules.Check("spec.url", "http://127.0.0.1:8080/hook", tests).Allowed);
        Assert.True(EgressRules.Check("spec.url", "https://[::1]:8443/hook", tests).Allowed);
        // Plain http to anything but loopback stays refused, and loopback still has to be listed.
        Assert.Contains("must use https", EgressRules.Check("spec.url", "http://hooks.example.com/services/x", tests).Refusal);
        Assert.Contains("is not under", EgressRules.Check("spec.url", "http://127.0.0.1:9999/hook", tests).Refusal);
    }

    [Fact]
    public void PrivateReceivers_NeedTheSetting()
    {
        Assert.Contains("AllowPrivateAddresses is false", EgressRules.Check("spec.url", "https://10.1.2.3/in/x", Policy).Refusal);
        Assert.True(EgressRules.Check("spec.url", "https://10.1.2.3/in/x", Policy with { AllowPrivateAddresses = true }).Allowed);
    }

    [Fact]
    public void Refusals_NeverEchoThePathOrQuery_TheyCanBeCredentials()
    {
        const string secret = "T0000/B0000/XXXXXXXXsecretXXXXXXXX";
        foreach (var url in new[]
                 {
                     $"https://hooks.other.example/{secret}", $"http://hooks.example.com/{secret}", $"https://169.254.169.254/{secret}",
                     $"https://hooks.other.example/x?token={secret}", $"https://u:{secret}@hooks.example.com/services/",
                 })
        {
            var refusal = EgressRules.Check("spec.url", url, Policy).Refusal;
            Assert.NotNull(refusal);
            Assert.DoesNotContain(secret, refusal, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void NothingConfigured_RefusesEveryUrl()
    {
        var decision = EgressRules.Check("spec.url", "https://hooks.example.com/services/x", new EgressPolicy());
        Assert.Contains("ControlPlane:NotificationUrlPrefixes (none configured) nor a host in ControlPlane:NotificationAllowedHosts (none configured)", decision.Refusal);
    }

    [Fact]
    public void MalformedAllowedHosts_MatchNothing()
    {
        var policy = new EgressPolicy { AllowedHosts = ["hooks.example.com/services", "user@hooks.example.com", "", "*"] };
        Assert.False(EgressRules.Check("spec.url", "https://hooks.example.com/services/x", policy).Allowed);
        Assert.False(EgressRules.Check("spec.url", "https://anything.example/", policy).Allowed);
    }

    [Fact]
    public void ThePolicy_ComesFromTheNotificationOptions()
    {
        var options = new ControlPlaneOptions
        {
            NotificationUrlPrefixes = ["https://hooks.example.com/"],
            NotificationAllowedHosts = ["events.pagerduty.com"],
            NotificationAllowPrivateAddresses = true,
        };
        var policy = EgressPolicy.ForNotifications(options);
        Assert.Equal(["https://hooks.example.com/"], policy.UrlPrefixes);
        Assert.Equal(["events.pagerduty.com"], policy.AllowedHosts);
        Assert.True(policy.AllowPrivateAddresses);
        Assert.False(policy.AllowLoopback);
        Assert.False(new ControlPlaneOptions().NotificationAllowPrivateAddresses);
        Assert.False(new ControlPlaneOptions().NotificationAllowLoopback);
    }
}
