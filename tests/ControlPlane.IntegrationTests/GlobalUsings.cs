global using OperatorRuntime = ControlPlane.Operator.OperatorRuntime;

