import { Layout } from '../layout';

export function CatalogPage(p: { oneSignal: { name: string; description: string } }): JSX.Element {
  return (
    <Layout title="Catalog" nav="catalog">
      <h1>Catalog</h1>
      <div class="cards">
        <section class="card" aria-labelledby="cat-onesignal">
          <h2 id="cat-onesignal" safe>
            {`${p.oneSignal.name} (destination)`}
          </h2>
          <p safe>{p.oneSignal.description}</p>
          <a class="button" href="/destinations/new">
            Add OneSignal destination
          </a>
        </section>
        <section class="card" aria-labelledby="cat-amplitude">
          <h2 id="cat-amplitude">Amplitude (source)</h2>
          <p>
            Discover Amplitude cohorts (Behavioral Cohorts API) or receive them in real time through Amplitude's cohort
            webhook. Sources hold a project's API and secret keys, so they are added from the command line:
          </p>
          <p>
            <code>ampsignal source add --name … --region us --api-key … --secret-key …</code>
          </p>
          <p>
            Cohorts imported from a file need no source: <code>ampsignal cohort import</code>.
          </p>
        </section>
      </div>
    </Layout>
  );
}
