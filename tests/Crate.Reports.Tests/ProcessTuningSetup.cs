using Crate.Training;

namespace Crate.Reports.Tests;

/// <summary>Runs before any test touches libtorch (see <see cref="ProcessTuning"/>): the reports measure models with it.</summary>
[SetUpFixture]
public sealed class ProcessTuningSetup
{
    [OneTimeSetUp]
    public void Apply() => ProcessTuning.Apply(coresShared: true);
}
