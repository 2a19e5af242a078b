namespace ControlPlane.Operator; public static class Program { public static int Main() => 0; }
