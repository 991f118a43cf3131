using Crate.Training;

namespace Crate.Training.Tests;

/// <summary>
/// Runs before any test touches libtorch: test runs share two cores with other work, where spinning OpenMP
/// threads and glibc's unmapping of freed buffers slow libtorch several-fold (see <see cref="ProcessTuning"/>).
/// </summary>
[SetUpFixture]
public sealed class ProcessTuningSetup
{
    [OneTimeSetUp]
    public void Apply() => ProcessTuning.Apply(coresShared: true);
}
